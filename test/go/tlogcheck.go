// tlogcheck: checks hipaa_audit's Merkle tree, tlog-checkpoints and proofs
// with Go's golang.org/x/mod/sumdb/tlog and sumdb/note, an implementation
// that shares no code with the extension (test/t/036_merkle.pl).
//
//	tlogcheck SCRIPT
//
// SCRIPT has one command per line:
//
//	key <verifier key>                       the log's key, for every note
//	leaf <hex audit_hash>                    the next leaf, in tree order
//	checkpoint <file>                        a signed tlog-checkpoint
//	proof <hex audit_hash> <file>            a c2sp.org/tlog-proof@v1
//	consistency <old note> <new note> <file> [cross-origin]
//	                                         base64 hashes, one per line;
//	                                         cross-origin: the notes' origins
//	                                         must differ (a restore into
//	                                         another cluster), not agree
//
// Each checkpoint's signature must verify (note.Open), and its root must be
// tlog.TreeHash of its size over the leaves; each proof must pass
// tlog.CheckRecord and be exactly tlog.ProveRecord's; each consistency
// proof must pass tlog.CheckTree and be exactly tlog.ProveTree's.  Prints
// one line per command; exits 1 at the first failure.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var (
	verifiers note.Verifiers
	stored    []tlog.Hash
	leaves    int64
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

var reader = tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(stored)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = stored[x]
	}
	return out, nil
})

// A signed tlog-checkpoint: its signature checked, size and root read.
func openCheckpoint(text []byte, what string) (string, int64, tlog.Hash) {
	n, err := note.Open(text, verifiers)
	if err != nil {
		fail("%s: note.Open: %v", what, err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("%s: fewer than three lines", what)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("%s: bad tree size %q", what, lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail("%s: bad root %q", what, lines[2])
	}
	var root tlog.Hash
	copy(root[:], raw)
	if !strings.HasPrefix(lines[3], "checkpoint v2\n") {
		fail("%s: line 4 is not \"checkpoint v2\"", what)
	}
	return lines[0], size, root
}

func treeHash(size int64, what string) tlog.Hash {
	if size > leaves {
		fail("%s: tree size %d, but only %d leaves were given", what, size, leaves)
	}
	if size == 0 {
		// RFC 6962: the empty tree's hash is SHA-256 of nothing; Go's
		// TreeHash returns zeros for it, so it is not asked.
		return tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8,
			0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95,
			0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
	}
	h, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("%s: TreeHash: %v", what, err)
	}
	return h
}

func readFile(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		fail("%v", err)
	}
	return b
}

func parseHashLine(line, what string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil || len(raw) != tlog.HashSize {
		fail("%s: %q is not a base64 SHA-256 hash", what, line)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func leafArg(s, what string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		fail("%s: %q is not 32 bytes of hex", what, s)
	}
	return b
}

func proof(leafHex, file string) {
	what := "proof " + file
	text := readFile(file)
	parts := bytes.SplitN(text, []byte("\n\n"), 2)
	if len(parts) != 2 {
		fail("%s: no empty line before the checkpoint", what)
	}
	lines := strings.Split(string(parts[0]), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail("%s: line 1 is %q", what, lines[0])
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		fail("%s: no index line", what)
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "index "), 10, 64)
	if err != nil {
		fail("%s: bad index", what)
	}
	var p tlog.RecordProof
	for _, l := range lines[1:] {
		p = append(p, parseHashLine(l, what))
	}
	_, size, root := openCheckpoint(parts[1], what)
	if want := treeHash(size, what); want != root {
		fail("%s: the checkpoint's root is not the tree's hash at size %d", what, size)
	}
	if err := tlog.CheckRecord(p, size, root, index, tlog.RecordHash(leafArg(leafHex, what))); err != nil {
		fail("%s: CheckRecord: %v", what, err)
	}
	mine, err := tlog.ProveRecord(size, index, reader)
	if err != nil {
		fail("%s: ProveRecord: %v", what, err)
	}
	if fmt.Sprint(mine) != fmt.Sprint(p) {
		fail("%s: the proof differs from tlog.ProveRecord's", what)
	}
	fmt.Printf("ok proof of leaf %d in a tree of %d (%d hashes)\n", index, size, len(p))
}

func consistency(oldFile, newFile, file string, cross bool) {
	what := "consistency " + file
	oldOrigin, oldSize, oldRoot := openCheckpoint(readFile(oldFile), oldFile)
	newOrigin, newSize, newRoot := openCheckpoint(readFile(newFile), newFile)
	if (oldOrigin != newOrigin) != cross {
		fail("%s: the checkpoints' origins %q and %q (cross-origin %v)", what, oldOrigin, newOrigin, cross)
	}
	var p tlog.TreeProof
	for _, l := range strings.Split(strings.TrimSuffix(string(readFile(file)), "\n"), "\n") {
		if l != "" {
			p = append(p, parseHashLine(l, what))
		}
	}
	if oldSize == 0 {
		if len(p) != 0 {
			fail("%s: a proof from the empty tree must be empty", what)
		}
	} else if err := tlog.CheckTree(p, newSize, newRoot, oldSize, oldRoot); err != nil {
		fail("%s: CheckTree: %v", what, err)
	}
	if oldSize > 0 {
		mine, err := tlog.ProveTree(newSize, oldSize, reader)
		if err != nil {
			fail("%s: ProveTree: %v", what, err)
		}
		if fmt.Sprint(mine) != fmt.Sprint(p) {
			fail("%s: the proof differs from tlog.ProveTree's", what)
		}
	}
	fmt.Printf("ok consistency from %d to %d (%d hashes)\n", oldSize, newSize, len(p))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck SCRIPT")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) == 0 {
			continue
		}
		switch {
		case w[0] == "key" && len(w) == 2:
			v, err := note.NewVerifier(w[1])
			if err != nil {
				fail("key: %v", err)
			}
			verifiers = note.VerifierList(v)
		case w[0] == "leaf" && len(w) == 2:
			hs, err := tlog.StoredHashes(leaves, leafArg(w[1], "leaf"), reader)
			if err != nil {
				fail("StoredHashes: %v", err)
			}
			stored = append(stored, hs...)
			leaves++
		case w[0] == "checkpoint" && len(w) == 2:
			_, size, root := openCheckpoint(readFile(w[1]), w[1])
			if want := treeHash(size, w[1]); want != root {
				fail("checkpoint %s: root %v, but the leaves hash to %v at size %d", w[1], root, want, size)
			}
			fmt.Printf("ok checkpoint of %d leaves\n", size)
		case w[0] == "proof" && len(w) == 3:
			proof(w[1], w[2])
		case w[0] == "consistency" && len(w) == 4:
			consistency(w[1], w[2], w[3], false)
		case w[0] == "consistency" && len(w) == 5 && w[4] == "cross-origin":
			consistency(w[1], w[2], w[3], true)
		default:
			fail("bad command %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		fail("%v", err)
	}
}
