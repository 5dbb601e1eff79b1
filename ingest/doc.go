// Package ingest turns what arrives on MQTT into something the engine can
// evaluate: it owns payload decoding (JSON, InfluxDB line protocol, bare
// numbers and auto-detection) behind one API, Decoder.Decode, event-time
// parsing, topic filters with named {name} captures, and the bounded dedupe
// sets behind a source's `dedupe:`. JSON is encoding/json's, but for one
// speed path inside Decode (scan.go) held to it by FuzzJSONFastPath.
//
// Everything here is pure and driven by its arguments: no goroutines, no
// clock, no I/O. It imports only the standard library, the line-protocol
// decoder and the shared event package; it must not import rules, engine,
// windows, cep, detect, store or conn, which all sit downstream of it.
//
// Every input is hostile: a payload from a misbehaving device must produce
// an error, never a panic or an unbounded allocation. The caps below
// (MaxPayload, MaxDepth, MaxFields, MaxLines, MaxLevels) exist for that.
package ingest
