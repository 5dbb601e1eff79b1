// Package packaging holds vigil's Debian packaging (nfpm.yaml, the systemd
// unit, the default config, maintainer scripts) and the test that installs
// the built .deb into a throwaway root. It has no code of its own and must
// not import any vigil package: it tests the shipped artifact, not the source.
package packaging
