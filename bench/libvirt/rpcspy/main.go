// Command rpcspy sits between a libvirt client and libvirtd's socket and
// records every RPC call: its procedure, when it was sent and when its
// reply came back. bench/libvirt/profile.sh points the libvirt plugin at it
// (the plugin's `socket` config) to count and time the calls each action
// makes, without changing the plugin.
//
//	rpcspy -listen /tmp/spy.sock -out calls.jsonl \
//	       [-target /var/run/libvirt/libvirt-sock] [-names remote_protocol.gen.go]
//
// It writes one JSON line per completed call:
//
//	{"conn":1,"proc":"StoragePoolRefresh","num":83,"call":<unix ns>,"reply":<unix ns>,"bytes":<reply size>,"error":true}
//
// ("error" only when libvirtd answered with an error)
//
// and stops on SIGINT or SIGTERM. -names is go-libvirt's
// internal/constants/remote_protocol.gen.go, read for the procedure names;
// without it procedures are numbers.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const remoteProgram = 0x20008086

type record struct {
	Conn  int    `json:"conn"`
	Proc  string `json:"proc"`
	Num   uint32 `json:"num"`
	Call  int64  `json:"call"`
	Reply int64  `json:"reply"`
	Bytes int    `json:"bytes"`
	Error bool   `json:"error,omitempty"` // the reply's status was an error
}

type key struct {
	prog, proc, serial uint32
}

var (
	names  = map[uint32]string{}
	outMu  sync.Mutex
	outEnc *json.Encoder
)

func main() {
	listen := flag.String("listen", "", "unix socket to listen on (required)")
	target := flag.String("target", "/var/run/libvirt/libvirt-sock", "libvirtd's socket")
	out := flag.String("out", "", "JSON lines file (required)")
	namesFile := flag.String("names", "", "go-libvirt's internal/constants/remote_protocol.gen.go")
	flag.Parse()
	if *listen == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "rpcspy: -listen and -out are required")
		os.Exit(2)
	}
	if *namesFile != "" {
		b, err := os.ReadFile(*namesFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rpcspy:", err)
			os.Exit(1)
		}
		for _, m := range regexp.MustCompile(`(?m)^\s*Proc(\w+) = (\d+)$`).FindAllStringSubmatch(string(b), -1) {
			n, _ := strconv.Atoi(m[2])
			names[uint32(n)] = m[1]
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcspy:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	outEnc = json.NewEncoder(w)
	_ = os.Remove(*listen)
	ln, err := net.Listen("unix", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcspy:", err)
		os.Exit(1)
	}
	_ = os.Chmod(*listen, 0o777)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ln.Close() // ends the accept loop below
	}()
	for id := 1; ; id++ {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		go serve(id, c, *target)
	}
	outMu.Lock()
	w.Flush()
	f.Close()
	os.Remove(*listen)
}

func serve(id int, client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("unix", target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcspy:", err)
		return
	}
	defer server.Close()
	var mu sync.Mutex
	pending := map[key]int64{}
	done := make(chan struct{}, 2)
	// client -> server: note when each call goes out.
	go func() {
		pump(client, server, func(prog, proc, typ, serial, _ uint32, size int) {
			if typ == 0 || typ == 4 { // call, call with fds
				mu.Lock()
				pending[key{prog, proc, serial}] = time.Now().UnixNano()
				mu.Unlock()
			}
		})
		done <- struct{}{}
	}()
	// server -> client: match each reply to its call.
	go func() {
		pump(server, client, func(prog, proc, typ, serial, status uint32, size int) {
			if typ != 1 && typ != 5 { // reply, reply with fds
				return
			}
			now := time.Now().UnixNano()
			mu.Lock()
			t, ok := pending[key{prog, proc, serial}]
			delete(pending, key{prog, proc, serial})
			mu.Unlock()
			if !ok {
				return
			}
			name := names[proc]
			if prog != remoteProgram || name == "" {
				name = fmt.Sprintf("prog%x/%d", prog, proc)
			}
			outMu.Lock()
			_ = outEnc.Encode(record{Conn: id, Proc: name, Num: proc, Call: t, Reply: now, Bytes: size, Error: status == 1})
			outMu.Unlock()
		})
		done <- struct{}{}
	}()
	<-done
}

// pump copies whole packets from src to dst and reports each header:
// length (4 bytes, including itself), program, version, procedure, type,
// serial, status.
func pump(src io.Reader, dst io.Writer, seen func(prog, proc, typ, serial, status uint32, size int)) {
	r := bufio.NewReaderSize(src, 1<<16)
	var lenBuf [4]byte
	buf := make([]byte, 1<<16)
	for {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(lenBuf[:]))
		if n < 4 {
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		pkt := buf[:n]
		copy(pkt, lenBuf[:])
		if _, err := io.ReadFull(r, pkt[4:]); err != nil {
			return
		}
		if n >= 28 {
			prog := binary.BigEndian.Uint32(pkt[4:])
			proc := binary.BigEndian.Uint32(pkt[12:])
			typ := binary.BigEndian.Uint32(pkt[16:])
			serial := binary.BigEndian.Uint32(pkt[20:])
			status := binary.BigEndian.Uint32(pkt[24:])
			seen(prog, proc, typ, serial, status, n)
		}
		if _, err := dst.Write(pkt); err != nil {
			return
		}
	}
}
