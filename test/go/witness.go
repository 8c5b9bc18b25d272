// witness: a small C2SP tlog-witness (c2sp.org/tlog-witness) for the tests
// of hipaa_audit's witnessing (test/t/037_witness.pl).  It follows the
// spec's add-checkpoint: it knows one log (origin and verifier key), checks
// the log's signature (note.Open), the old size against the size it last
// co-signed (409 with text/x.tlog.size otherwise), the consistency proof
// (tlog.CheckTree, 422 otherwise), persists its state atomically (written
// to a new file, synced and renamed, under a lock, before it answers), and
// answers with a cosignature/v1 line (Ed25519, key type 0x04, C2SP
// tlog-cosignature).  It never rolls back: a smaller tree, or another root
// at the same size, is refused.
//
//	witness -listen 127.0.0.1:PORT -state FILE -key SEEDFILE -name NAME \
//	        -origin ORIGIN -log VERIFIER_KEY [-vkey-out FILE]
//
// The seed file holds the 32-byte Ed25519 seed (made when missing); the
// witness's verifier key is written to -vkey-out.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type state struct {
	Size int64  `json:"size"`
	Root string `json:"root"`
}

var (
	mu        sync.Mutex
	statePath string
	name      string
	origin    string
	priv      ed25519.PrivateKey
	keyID     [4]byte
	verifiers note.Verifiers
)

func load() state {
	var s state
	b, err := os.ReadFile(statePath)
	if err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			log.Fatalf("state %s: %v", statePath, err)
		}
	}
	return s
}

func save(s state) error {
	b, _ := json.Marshal(s)
	tmp := statePath + ".new"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	return os.Rename(tmp, statePath)
}

func answer(w http.ResponseWriter, code int, ctype, body string) {
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(code)
	io.WriteString(w, body)
	log.Printf("%d %s", code, strings.TrimSpace(body))
}

func addCheckpoint(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		answer(w, 405, "", "POST only\n")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		answer(w, 400, "", "unreadable body\n")
		return
	}
	parts := bytes.SplitN(body, []byte("\n\n"), 2)
	if len(parts) != 2 {
		answer(w, 400, "", "no empty line before the checkpoint\n")
		return
	}
	lines := strings.Split(string(parts[0]), "\n")
	if !strings.HasPrefix(lines[0], "old ") {
		answer(w, 400, "", "no old size line\n")
		return
	}
	old, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "old "), 10, 64)
	if err != nil || old < 0 || strconv.FormatInt(old, 10) != strings.TrimPrefix(lines[0], "old ") {
		answer(w, 400, "", "bad old size\n")
		return
	}
	if len(lines)-1 > 63 {
		answer(w, 400, "", "more than 63 proof lines\n")
		return
	}
	var proof tlog.TreeProof
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			answer(w, 400, "", "bad proof line\n")
			return
		}
		var x tlog.Hash
		copy(x[:], h)
		proof = append(proof, x)
	}
	cp := parts[1]
	first := string(cp[:bytes.IndexByte(cp, '\n')+1])
	if strings.TrimSuffix(first, "\n") != origin {
		answer(w, 404, "", "unknown origin\n")
		return
	}
	n, err := note.Open(cp, verifiers)
	if err != nil {
		answer(w, 403, "", "no signature by the log's key verifies\n")
		return
	}
	body3 := strings.SplitN(n.Text, "\n", 4)
	if len(body3) < 4 {
		answer(w, 400, "", "not a checkpoint\n")
		return
	}
	size, err := strconv.ParseInt(body3[1], 10, 64)
	rootb, err2 := base64.StdEncoding.DecodeString(body3[2])
	if err != nil || err2 != nil || len(rootb) != tlog.HashSize || size < 0 {
		answer(w, 400, "", "not a checkpoint\n")
		return
	}
	var root tlog.Hash
	copy(root[:], rootb)
	if old > size {
		answer(w, 400, "", "old size larger than the checkpoint\n")
		return
	}

	mu.Lock()
	defer mu.Unlock()
	s := load()
	if old != s.Size {
		answer(w, 409, "text/x.tlog.size", fmt.Sprintf("%d\n", s.Size))
		return
	}
	if old == size {
		if s.Size > 0 && s.Root != body3[2] {
			answer(w, 409, "text/x.tlog.size", fmt.Sprintf("%d\n", s.Size))
			return
		}
	} else if old == 0 {
		if len(proof) != 0 {
			answer(w, 422, "", "a proof from the empty tree must be empty\n")
			return
		}
	} else {
		oldRootb, _ := base64.StdEncoding.DecodeString(s.Root)
		var oldRoot tlog.Hash
		copy(oldRoot[:], oldRootb)
		if err := tlog.CheckTree(proof, size, root, old, oldRoot); err != nil {
			answer(w, 422, "", "the consistency proof does not verify\n")
			return
		}
	}
	if err := save(state{Size: size, Root: body3[2]}); err != nil {
		answer(w, 500, "", "could not persist\n")
		return
	}
	ts := uint64(time.Now().Unix())
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, n.Text)
	sig := ed25519.Sign(priv, []byte(msg))
	blob := make([]byte, 0, 4+8+64)
	blob = append(blob, keyID[:]...)
	blob = binary.BigEndian.AppendUint64(blob, ts)
	blob = append(blob, sig...)
	answer(w, 200, "", fmt.Sprintf("\u2014 %s %s\n", name, base64.StdEncoding.EncodeToString(blob)))
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	keyPath := flag.String("key", "", "seed file")
	logKey := flag.String("log", "", "the log's verifier key")
	vkeyOut := flag.String("vkey-out", "", "write the witness's verifier key here")
	flag.StringVar(&statePath, "state", "", "state file")
	flag.StringVar(&name, "name", "witness.test", "witness name")
	flag.StringVar(&origin, "origin", "", "the log's origin")
	flag.Parse()

	seed, err := os.ReadFile(*keyPath)
	if err != nil {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*keyPath, seed, 0600); err != nil {
			log.Fatal(err)
		}
	}
	priv = ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	h := sha256.Sum256(append(append([]byte(name+"\n"), 0x04), pub...))
	copy(keyID[:], h[:4])
	vkey := fmt.Sprintf("%s+%x+%s", name, keyID, base64.StdEncoding.EncodeToString(append([]byte{0x04}, pub...)))
	if *vkeyOut != "" {
		if err := os.WriteFile(*vkeyOut, []byte(vkey+"\n"), 0644); err != nil {
			log.Fatal(err)
		}
	}
	v, err := note.NewVerifier(*logKey)
	if err != nil {
		log.Fatalf("-log: %v", err)
	}
	verifiers = note.VerifierList(v)
	http.HandleFunc("/add-checkpoint", addCheckpoint)
	log.Printf("witness %s for %s on %s", vkey, origin, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
