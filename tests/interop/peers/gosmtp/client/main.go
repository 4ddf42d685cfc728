// go-smtp (github.com/emersion/go-smtp) as an SMTP client peer: sends one
// or more message files over one connection to 127.0.0.1:PORT.
//
// Usage (built by install.sh into $PEERS_DIR/gosmtp/gosmtp-client):
//
//	gosmtp-client --port P --from F --to T [--to T2 ...] --file MSG [--file MSG2 ...]
//	    [--starttls [--cafile CERT]] [--auth user:pass] [--lmtp] [--smtputf8]
//
// EHLO client.test (LHLO with --lmtp); with --starttls, STARTTLS and the
// certificate checked against --cafile for the name 127.0.0.1; with
// --auth, AUTH PLAIN. Each file is one transaction (MAIL, RCPT..., DATA)
// on the same connection, then QUIT. go-smtp's Data writer
// (net/textproto's DotWriter) dot-stuffs, turns a bare LF into CRLF and
// adds a final CRLF if missing. Prints one line per recipient
// (`rcpt <ADDR>: OK` / `rcpt <ADDR>: REFUSED CODE text`) and per message
// (`message N: OK` / `message N: FAILED ...`). Exit status 0 only when
// every recipient of every message was accepted and every message too.
// The whole session is bounded to 60 s.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func describe(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err.Error()
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "gosmtp-client: %s: %s\n", what, describe(err))
	os.Exit(1)
}

func main() {
	var to, files listFlag
	port := flag.Int("port", 0, "port on 127.0.0.1")
	from := flag.String("from", "", "envelope sender")
	starttls := flag.Bool("starttls", false, "STARTTLS (required)")
	cafile := flag.String("cafile", "", "trusted certificate (PEM) for STARTTLS")
	auth := flag.String("auth", "", "user:pass for AUTH PLAIN")
	lmtp := flag.Bool("lmtp", false, "speak LMTP (LHLO, a reply per recipient)")
	utf8 := flag.Bool("smtputf8", false, "MAIL ... SMTPUTF8")
	flag.Var(&to, "to", "recipient (repeatable)")
	flag.Var(&files, "file", "message file (repeatable: one transaction each)")
	flag.Parse()
	if *port == 0 || len(to) == 0 || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "gosmtp-client: --port, --to and --file are required")
		os.Exit(2)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fail("connect", err)
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var c *smtp.Client
	if *lmtp {
		c, err = smtp.NewClientLMTP(conn, "127.0.0.1")
	} else {
		c, err = smtp.NewClient(conn, "127.0.0.1")
	}
	if err != nil {
		fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		fail("EHLO", err)
	}
	if *starttls {
		cfg := &tls.Config{ServerName: "127.0.0.1"}
		if *cafile != "" {
			pem, err := ioutil.ReadFile(*cafile)
			if err != nil {
				fail("cafile", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				fail("cafile", errors.New("no certificate in "+*cafile))
			}
			cfg.RootCAs = pool
		}
		if err := c.StartTLS(cfg); err != nil {
			fail("STARTTLS", err)
		}
	}
	if *auth != "" {
		i := strings.IndexByte(*auth, ':')
		if i < 0 {
			fail("auth", errors.New("want user:pass"))
		}
		if err := c.Auth(sasl.NewPlainClient("", (*auth)[:i], (*auth)[i+1:])); err != nil {
			fail("AUTH", err)
		}
	}
	ok := true
	for n, file := range files {
		body, err := ioutil.ReadFile(file)
		if err != nil {
			fail("read", err)
		}
		if err := c.Mail(*from, &smtp.MailOptions{UTF8: *utf8}); err != nil {
			fmt.Printf("message %d: FAILED MAIL %s\n", n+1, describe(err))
			ok = false
			if err := c.Reset(); err != nil {
				fail("RSET", err)
			}
			continue
		}
		accepted := 0
		for _, rcpt := range to {
			if err := c.Rcpt(rcpt); err != nil {
				fmt.Printf("rcpt <%s>: REFUSED %s\n", rcpt, describe(err))
				ok = false
			} else {
				fmt.Printf("rcpt <%s>: OK\n", rcpt)
				accepted++
			}
		}
		if accepted == 0 {
			fmt.Printf("message %d: FAILED no recipient accepted\n", n+1)
			if err := c.Reset(); err != nil {
				fail("RSET", err)
			}
			continue
		}
		w, err := c.Data()
		if err != nil {
			fmt.Printf("message %d: FAILED DATA %s\n", n+1, describe(err))
			ok = false
			continue
		}
		if _, err := w.Write(body); err != nil {
			fail("write", err)
		}
		if err := w.Close(); err != nil {
			fmt.Printf("message %d: FAILED %s\n", n+1, describe(err))
			ok = false
			continue
		}
		fmt.Printf("message %d: OK\n", n+1)
	}
	if err := c.Quit(); err != nil {
		fail("QUIT", err)
	}
	if !ok {
		os.Exit(1)
	}
}
