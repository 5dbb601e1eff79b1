package packaging

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// The repository's documentation: every Markdown file outside testdata.
func repoDocs(t *testing.T) []string {
	t.Helper()
	var docs []string
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "dist" || strings.HasPrefix(d.Name(), ".") && p != "..") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("found only %v", docs)
	}
	return docs
}

// mdLink is an inline Markdown link or image: [text](target "title").
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// relativeLinks are the links of a Markdown text that point into the
// repository (no scheme, no bare #anchor), outside code blocks and spans.
func relativeLinks(md string) []string {
	var out []string
	inBlock := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			continue
		}
		l = regexp.MustCompile("`[^`]*`").ReplaceAllString(l, "")
		for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			out = append(out, target)
		}
	}
	return out
}

// anchors are the GitHub-style ids of a Markdown text's headings.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		h = strings.ToLower(drop.ReplaceAllString(h, ""))
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

// TestDocLinks: every relative link of the docs (README, docs/*.md,
// BENCHMARKS.md, …) names a file or directory of the repository, and a
// #fragment names a heading of the file.
func TestDocLinks(t *testing.T) {
	for _, doc := range repoDocs(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range relativeLinks(string(b)) {
			target, frag, _ := strings.Cut(link, "#")
			p := filepath.Join(filepath.Dir(doc), target)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: link %q: %v", doc, link, err)
				continue
			}
			if frag != "" && strings.HasSuffix(p, ".md") {
				tb, _ := os.ReadFile(p)
				if !anchors(string(tb))[frag] {
					t.Errorf("%s: link %q: no heading #%s in %s", doc, link, frag, target)
				}
			}
		}
	}
}

// TestInstalledDocLinks: in the .deb's layout (nfpm.yaml's contents), every
// shipped Markdown file's relative links name a shipped file or directory.
func TestInstalledDocLinks(t *testing.T) {
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Contents []struct {
			Src, Dst, Type string
		}
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	shipped := map[string]bool{} // files and every directory above them
	var docs [][2]string
	for _, c := range cfg.Contents {
		if c.Src == "" {
			continue
		}
		for d := c.Dst; d != "/"; d = path.Dir(d) {
			shipped[d] = true
		}
		if strings.HasSuffix(c.Src, ".md") {
			docs = append(docs, [2]string{c.Src, c.Dst})
		}
	}
	if len(docs) == 0 {
		t.Fatal("the package ships no Markdown docs")
	}
	for _, d := range docs {
		src, err := os.ReadFile(filepath.Join("..", d[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range relativeLinks(string(src)) {
			target, _, _ := strings.Cut(link, "#")
			if p := path.Join(path.Dir(d[1]), target); !shipped[p] {
				t.Errorf("%s (installed as %s): link %q: %s is not in the package", d[0], d[1], link, p)
			}
		}
	}
}
