package kafkasec

import (
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testcerts"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestBadKafkaCredentialsFailFast: a wrong SASL password, a CA that did not sign the
// broker's certificate, a missing client certificate and a plaintext client on a TLS
// listener each stop the source and the sink within 30 s with a message that says what to
// fix, and never show the password.
func TestBadKafkaCredentialsFailFast(t *testing.T) {
	env := testenv.New(t)
	sec := env.Secured(t)
	otherCA := testcerts.NewCA(t, "some other CA").File
	cases := []struct {
		name    string
		brokers []string
		flags   []string
		env     string
		want    []string // each must appear in the output
	}{
		{"wrong password", sec.SASLSSLBrokers,
			[]string{"--kafka-tls", "--kafka-tls-ca-file", sec.CAFile(), "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", sec.Source},
			"not-the-password", []string{"SASL authentication failed", "--kafka-sasl-user"}},
		{"untrusted CA", sec.SASLSSLBrokers,
			[]string{"--kafka-tls", "--kafka-tls-ca-file", otherCA, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", sec.Source},
			sec.Users[sec.Source], []string{"certificate", "--kafka-tls-ca-file"}},
		{"no client certificate", sec.MTLSBrokers,
			[]string{"--kafka-tls", "--kafka-tls-ca-file", sec.CAFile()},
			"", []string{"--kafka-tls-cert-file"}},
		{"plaintext against TLS", sec.SASLSSLBrokers,
			nil, "", []string{"speaks TLS", "--kafka-tls"}},
	}
	srcBin, sinkBin := procs.Binaries(t)
	for _, c := range cases {
		for _, who := range []string{"source", "sink"} {
			t.Run(who+"_"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				prefix := testenv.TopicPrefix(t)
				var extra []string
				if c.env != "" {
					extra = []string{"LOGBRIDGE_" + strings.ToUpper(who) + "_KAFKA_SASL_PASSWORD=" + c.env}
				}
				flags := c.flags
				if who == "sink" && len(flags) > 0 && flags[len(flags)-1] == sec.Source {
					flags = append(append([]string{}, flags[:len(flags)-1]...), sec.Sink)
				}
				bin, args := srcBin, []string{"--source-uri", env.SourceURI, "--include", "nothing.*"}
				if who == "sink" {
					bin, args = sinkBin, []string{"--dest-uri", env.DestURI, "--group", prefix + "-sink"}
				}
				start := time.Now()
				p := startWithEnv(t, who, bin, extra, append(append(args, "--kafka-brokers", strings.Join(c.brokers, ","),
					"--topic-prefix", prefix, "--http-addr", "127.0.0.1:0"), flags...)...)
				out := p.WaitExit(t, 30*time.Second)
				t.Logf("%s %s: stopped after %s", who, c.name, time.Since(start).Round(100*time.Millisecond))
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("the error does not say %q:\n%s", w, out)
					}
				}
				if c.env != "" && strings.Contains(out, c.env) {
					t.Errorf("the output shows the SASL password")
				}
			})
		}
	}
}
