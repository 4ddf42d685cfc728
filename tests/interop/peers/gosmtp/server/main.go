// go-smtp (github.com/emersion/go-smtp) as an SMTP server peer that stores
// every message it accepts. For message N (from 0) it writes, each
// atomically:
//
//	OUTDIR/msg-N.eml   the message as go-smtp hands it to the backend:
//	                   dot-unstuffed, and (go-smtp 0.12, net/textproto's
//	                   DotReader) every CRLF turned into a bare LF
//	OUTDIR/msg-N.json  mail_from, mail_opts, rcpt_tos, tls, auth, helo, conn
//
// Usage (built by install.sh into $PEERS_DIR/gosmtp/gosmtp-server):
//
//	gosmtp-server --port 2527 --outdir DIR [--tls-cert C --tls-key K]
//	    [--auth user:pass] [--smtputf8] [--lmtp] [--reject-rcpt ADDR ...]
//	    [--seconds 120] [--max-messages N] [--max-sessions N]
//
// With --tls-cert, STARTTLS is offered; with --auth, AUTH PLAIN is offered
// after STARTTLS only (go-smtp's default) and required before MAIL
// (530 5.7.0). --lmtp speaks LMTP (LHLO, a reply per recipient) on the TCP
// port. Listens on 127.0.0.1 only; prints "READY <port>" once listening.
// Bounded: exits after --seconds, or once --max-messages messages were
// stored (after 200 ms, so the client reads its reply), or once
// --max-sessions sessions have ended (go-smtp opens a session at AUTH or
// at the first MAIL; a connection without either is not counted).
package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

var (
	port        = flag.Int("port", 0, "port on 127.0.0.1")
	outdir      = flag.String("outdir", "", "directory for msg-N.eml / msg-N.json")
	tlsCert     = flag.String("tls-cert", "", "certificate (PEM): offer STARTTLS")
	tlsKey      = flag.String("tls-key", "", "key (PEM)")
	authFlag    = flag.String("auth", "", "user:pass: offer AUTH PLAIN after TLS, require it")
	smtputf8    = flag.Bool("smtputf8", false, "advertise SMTPUTF8")
	lmtp        = flag.Bool("lmtp", false, "speak LMTP")
	seconds     = flag.Int("seconds", 120, "exit after this many seconds")
	maxMessages = flag.Int("max-messages", 0, "exit after this many stored messages (0: no limit)")
	maxSessions = flag.Int("max-sessions", 0, "exit after this many ended sessions (0: no limit)")
	rejectRcpt  listFlag
)

var (
	mu       sync.Mutex
	stored   int
	sessions int
	connSeq  int
)

type backend struct{}

type session struct {
	conn  int
	state smtp.ConnectionState
	auth  string
	from  string
	opts  smtp.MailOptions
	rcpts []string
}

func newSession(state *smtp.ConnectionState, auth string) *session {
	mu.Lock()
	n := connSeq
	connSeq++
	mu.Unlock()
	return &session{conn: n, state: *state, auth: auth}
}

func (backend) Login(state *smtp.ConnectionState, username, password string) (smtp.Session, error) {
	user, pass := splitAuth(*authFlag)
	if *authFlag == "" || username != user || password != pass {
		return nil, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Invalid credentials"}
	}
	return newSession(state, username), nil
}

func (backend) AnonymousLogin(state *smtp.ConnectionState) (smtp.Session, error) {
	if *authFlag != "" {
		return nil, &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	return newSession(state, ""), nil
}

func (s *session) Reset() {
	s.from = ""
	s.opts = smtp.MailOptions{}
	s.rcpts = nil
}

func (s *session) Logout() error {
	mu.Lock()
	sessions++
	done := *maxSessions > 0 && sessions >= *maxSessions
	mu.Unlock()
	if done {
		go func() { time.Sleep(200 * time.Millisecond); os.Exit(0) }()
	}
	return nil
}

func (s *session) Mail(from string, opts smtp.MailOptions) error {
	s.from = from
	s.opts = opts
	return nil
}

func (s *session) Rcpt(to string) error {
	for _, r := range rejectRcpt {
		if r == to {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: fmt.Sprintf("<%s>: recipient rejected", to)}
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	body, err := ioutil.ReadAll(r)
	if err != nil {
		return err
	}
	meta := map[string]interface{}{
		"mail_from": s.from,
		"mail_opts": map[string]interface{}{"size": s.opts.Size, "utf8": s.opts.UTF8, "require_tls": s.opts.RequireTLS},
		"rcpt_tos":  s.rcpts,
		"tls":       s.state.TLS.HandshakeComplete,
		"auth":      nil,
		"helo":      s.state.Hostname,
		"conn":      s.conn,
		"peer":      s.state.RemoteAddr.String(),
	}
	if s.auth != "" {
		meta["auth"] = s.auth
	}
	js, err := json.MarshalIndent(meta, "", " ")
	if err != nil {
		return err
	}
	mu.Lock()
	n := stored
	stored++
	done := *maxMessages > 0 && stored >= *maxMessages
	if err := writeAtomic(fmt.Sprintf("msg-%d.eml", n), body); err != nil {
		mu.Unlock()
		return err
	}
	if err := writeAtomic(fmt.Sprintf("msg-%d.json", n), js); err != nil {
		mu.Unlock()
		return err
	}
	mu.Unlock()
	if done {
		go func() { time.Sleep(200 * time.Millisecond); os.Exit(0) }()
	}
	return nil
}

func writeAtomic(name string, data []byte) error {
	tmp := filepath.Join(*outdir, "."+name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(*outdir, name))
}

func splitAuth(s string) (string, string) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func main() {
	flag.Var(&rejectRcpt, "reject-rcpt", "refuse this recipient with 550 (repeatable)")
	flag.Parse()
	if *port == 0 || *outdir == "" {
		fmt.Fprintln(os.Stderr, "gosmtp-server: --port and --outdir are required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*outdir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gosmtp-server:", err)
		os.Exit(1)
	}
	s := smtp.NewServer(backend{})
	s.Domain = "gosmtp.test"
	s.LMTP = *lmtp
	s.EnableSMTPUTF8 = *smtputf8
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.MaxMessageBytes = 64 << 20
	s.AuthDisabled = *authFlag == ""
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gosmtp-server:", err)
			os.Exit(1)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosmtp-server:", err)
		os.Exit(1)
	}
	fmt.Printf("READY %d\n", *port)
	time.AfterFunc(time.Duration(*seconds)*time.Second, func() { os.Exit(0) })
	if err := s.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintln(os.Stderr, "gosmtp-server:", err)
		os.Exit(1)
	}
}
