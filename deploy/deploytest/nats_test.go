package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/sink/consume"
)

const (
	natsClusterConfig = "deploy/nats/nats-cluster.conf"
	natsSingleConfig  = "deploy/nats/nats-single.conf"
)

// natsPasswords are the values the tests give the variables that accounts.conf reads.
var natsPasswords = map[string]string{
	"TISYNC_NATS_PASSWORD": "tisyncPw4TestOnly",
	"NATS_READER_PASSWORD": "readerPw4TestOnly",
	"NATS_SYSTEM_PASSWORD": "systemPw4TestOnly",
}

func setNATSEnv(t *testing.T, serverName string) {
	t.Helper()
	for k, v := range natsPasswords {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", serverName)
}

// natsUser returns the user named name of the parsed options.
func natsUser(t *testing.T, opts *server.Options, name string) *server.User {
	t.Helper()
	for _, u := range opts.Users {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("no NATS user %s", name)
	return nil
}

func TestNATSClusterConfig(t *testing.T) {
	setNATSEnv(t, "nats-2")
	opts, err := server.ProcessConfigFile(repoPath(t, natsClusterConfig))
	if err != nil {
		t.Fatalf("nats-server cannot read %s: %v", natsClusterConfig, err)
	}

	if opts.ServerName != "nats-2" {
		t.Errorf("server_name %q, want the value of NATS_SERVER_NAME", opts.ServerName)
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Errorf("client port %d and monitoring port %d, want 4222 and 8222", opts.Port, opts.HTTPPort)
	}
	if opts.MaxPayload != 8<<20 {
		t.Errorf("max_payload %d, want 8 MiB like tisync's embedded server", opts.MaxPayload)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("jetstream %v with store_dir %q, want JetStream on with its store in /data", opts.JetStream, opts.StoreDir)
	}
	if opts.Cluster.Name != "tisync" || opts.Cluster.Port != 6222 {
		t.Errorf("cluster %q on port %d, want tisync on 6222", opts.Cluster.Name, opts.Cluster.Port)
	}
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Host)
	}
	if want := []string{"nats-1:6222", "nats-2:6222", "nats-3:6222"}; !slices.Equal(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	checkNATSAccounts(t, opts)
}

func TestNATSSingleConfig(t *testing.T) {
	setNATSEnv(t, "unused")
	opts, err := server.ProcessConfigFile(repoPath(t, natsSingleConfig))
	if err != nil {
		t.Fatalf("nats-server cannot read %s: %v", natsSingleConfig, err)
	}
	if opts.MaxPayload != 8<<20 || !opts.JetStream || opts.StoreDir != "/data" || opts.HTTPPort != 8222 {
		t.Errorf("max_payload %d, jetstream %v, store_dir %q, http_port %d: want 8 MiB, JetStream in /data, monitoring on 8222",
			opts.MaxPayload, opts.JetStream, opts.StoreDir, opts.HTTPPort)
	}
	if opts.Cluster.Port != 0 || len(opts.Routes) != 0 {
		t.Errorf("the single server has a cluster block: port %d, routes %v", opts.Cluster.Port, opts.Routes)
	}
	checkNATSAccounts(t, opts)
}

// checkNATSAccounts checks the users of accounts.conf: passwords from the environment, tisync's
// account for tisync and its reader, and the system account.
func checkNATSAccounts(t *testing.T, opts *server.Options) {
	t.Helper()
	if opts.SystemAccount != "SYS" {
		t.Errorf("system_account %q, want SYS", opts.SystemAccount)
	}
	for user, env := range map[string]string{"tisync": "TISYNC_NATS_PASSWORD", "tisync_reader": "NATS_READER_PASSWORD", "system": "NATS_SYSTEM_PASSWORD"} {
		u := natsUser(t, opts, user)
		if u.Password != natsPasswords[env] {
			t.Errorf("user %s: password is not the value of %s", user, env)
		}
	}
	for _, user := range []string{"tisync", "tisync_reader"} {
		if acc := natsUser(t, opts, user).Account; acc == nil || acc.Name != "TISYNC" {
			t.Errorf("user %s is not in account TISYNC", user)
		}
	}
	if natsUser(t, opts, "tisync").Permissions != nil {
		t.Error("user tisync has permissions: it creates streams, buckets and consumers, so it needs its whole account")
	}
	reader := natsUser(t, opts, "tisync_reader").Permissions
	if reader == nil || reader.Publish == nil || reader.Subscribe == nil {
		t.Fatal("user tisync_reader has no publish and subscribe permissions")
	}
	for _, subject := range reader.Publish.Allow {
		streamWrite := strings.HasPrefix(subject, "$JS.API.STREAM.") && !strings.Contains(subject, ".INFO.") && !strings.Contains(subject, ".MSG.GET.")
		if strings.HasPrefix(subject, "testinvite.") || streamWrite {
			t.Errorf("user tisync_reader may publish to %s", subject)
		}
	}
	// The deny list protects the sink's consumer under its default name.
	sinkConsumer := consume.DefaultConfig().Consumer
	for _, want := range []string{
		"$JS.API.CONSUMER.*.TESTINVITE." + sinkConsumer,
		"$JS.API.CONSUMER.MSG.NEXT.TESTINVITE." + sinkConsumer,
		"$JS.ACK.TESTINVITE." + sinkConsumer + ".>",
	} {
		if !slices.Contains(reader.Publish.Deny, want) {
			t.Errorf("user tisync_reader: publish deny list lacks %s, which protects the sink's consumer %s", want, sinkConsumer)
		}
	}
}

func TestNATSConfigNeedsPasswords(t *testing.T) {
	setNATSEnv(t, "nats-1")
	os.Unsetenv("TISYNC_NATS_PASSWORD")
	_, err := server.ProcessConfigFile(repoPath(t, natsClusterConfig))
	if err == nil || !strings.Contains(err.Error(), "TISYNC_NATS_PASSWORD") {
		t.Errorf("nats-server started without TISYNC_NATS_PASSWORD (error %v), want an error naming the variable", err)
	}
}

// startNATSCluster starts three in-process servers from the cluster configuration, moved to
// loopback ports and temporary stores. Each node routes to all three, as in the file.
func startNATSCluster(t *testing.T) []*server.Server {
	t.Helper()
	// nats-server needs the routes at start, so the cluster ports are chosen first: free ports
	// that another process could take before the servers bind them, which would fail the test.
	var routes []*url.URL
	var ports []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ports = append(ports, port)
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", port)})
	}

	var servers []*server.Server
	for i := range 3 {
		setNATSEnv(t, fmt.Sprintf("nats-%d", i+1))
		opts, err := server.ProcessConfigFile(repoPath(t, natsClusterConfig))
		if err != nil {
			t.Fatalf("read %s: %v", natsClusterConfig, err)
		}
		opts.Host, opts.Port = "127.0.0.1", -1
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", ports[i]
		opts.Routes = routes
		opts.StoreDir = t.TempDir()
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats-%d: %v", i+1, err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
	}
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("nats-%d did not accept connections within 20s", i+1)
		}
	}
	return servers
}

// waitFor polls cond every 50ms until it returns nil or the timeout passes, and returns its last
// error.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNATSClusterServesTisync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	servers := startNATSCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The monitoring URL of the container health check returns 200 once JetStream runs.
	healthURL := fmt.Sprintf("http://%s/healthz?js-enabled-only=true", servers[0].MonitorAddr())
	err := waitFor(20*time.Second, func() error {
		resp, err := http.Get(healthURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("GET %s: %v", healthURL, err)
	}

	nc, err := nats.Connect(servers[1].ClientURL(), nats.UserInfo("tisync", natsPasswords["TISYNC_NATS_PASSWORD"]))
	if err != nil {
		t.Fatalf("connect as tisync: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The stream and the buckets get three replicas, the setting that the configuration's comment
	// recommends. Creating them fails until the cluster has elected a JetStream leader, and
	// a request sent before that gets no reply, so each attempt has its own timeout.
	var stream jetstream.Stream
	err = waitFor(30*time.Second, func() error {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		stream, err = js.CreateStream(attemptCtx, jetstream.StreamConfig{Name: "TESTINVITE", Subjects: []string{"testinvite.>"}, Replicas: 3})
		return err
	})
	if err != nil {
		t.Fatalf("create the stream TESTINVITE with 3 replicas as tisync: %v", err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "tisync_leases", Replicas: 3, TTL: time.Minute}); err != nil {
		t.Fatalf("create the bucket tisync_leases with 3 replicas as tisync: %v", err)
	}
	sinkConsumer := consume.DefaultConfig().Consumer
	if _, err := js.CreateOrUpdateConsumer(ctx, "TESTINVITE", jetstream.ConsumerConfig{Durable: sinkConsumer, AckPolicy: jetstream.AckExplicitPolicy, Replicas: 3}); err != nil {
		t.Fatalf("create the sink's consumer %s as tisync: %v", sinkConsumer, err)
	}

	// An event close to max_payload is accepted.
	subject := "testinvite.DemoOrganization0001.Task1.ticket.updated"
	big := bytes.Repeat([]byte("x"), 7<<20)
	if _, err := js.Publish(ctx, subject, big); err != nil {
		t.Fatalf("publish a 7 MiB event: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream cluster info %+v, want a leader and two replicas", info.Cluster)
	}

	t.Run("reader reads events", func(t *testing.T) {
		rc, err := nats.Connect(servers[2].ClientURL(), nats.UserInfo("tisync_reader", natsPasswords["NATS_READER_PASSWORD"]))
		if err != nil {
			t.Fatalf("connect as tisync_reader: %v", err)
		}
		defer rc.Close()
		rjs, err := jetstream.New(rc)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := rjs.OrderedConsumer(ctx, "TESTINVITE", jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatalf("ordered consumer as tisync_reader: %v", err)
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("read the event as tisync_reader: %v", err)
		}
		if msg.Subject() != subject || len(msg.Data()) != len(big) {
			t.Errorf("read %s with %d bytes, want %s with %d", msg.Subject(), len(msg.Data()), subject, len(big))
		}

		sub, err := rc.SubscribeSync("testinvite.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Flush(); err != nil {
			t.Fatal(err)
		}
		// The subscription's interest reaches the other servers over the routes a moment after the
		// flush, so publish until a message arrives.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := js.Publish(ctx, subject, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextMsg(250 * time.Millisecond); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("core subscription to testinvite.> as tisync_reader received nothing within 10s")
				break
			}
		}
	})

	t.Run("reader cannot write", func(t *testing.T) {
		// The server sends no reply to a denied request, only an asynchronous permissions violation
		// that names the subject, so each request below ends with its timeout. The violations prove
		// that the permissions, not a slow cluster, stopped them.
		var mu sync.Mutex
		var violations []string
		rc, err := nats.Connect(servers[2].ClientURL(), nats.UserInfo("tisync_reader", natsPasswords["NATS_READER_PASSWORD"]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				mu.Lock()
				defer mu.Unlock()
				violations = append(violations, err.Error())
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		rjs, err := jetstream.New(rc)
		if err != nil {
			t.Fatal(err)
		}

		attempts := []struct {
			name    string
			subject string
			run     func(context.Context) error
		}{
			{"publish an event", subject, func(context.Context) error {
				if err := rc.Publish(subject, []byte("{}")); err != nil {
					return err
				}
				return rc.Flush()
			}},
			{"delete the stream", "$JS.API.STREAM.DELETE.TESTINVITE", func(ctx context.Context) error {
				return rjs.DeleteStream(ctx, "TESTINVITE")
			}},
			{"open the lease bucket", "$JS.API.STREAM.INFO.KV_tisync_leases", func(ctx context.Context) error {
				_, err := rjs.KeyValue(ctx, "tisync_leases")
				return err
			}},
			{"read the sink's consumer", "$JS.API.CONSUMER.INFO.TESTINVITE." + sinkConsumer, func(ctx context.Context) error {
				_, err := rjs.Consumer(ctx, "TESTINVITE", sinkConsumer)
				return err
			}},
			{"change the sink's consumer", "$JS.API.CONSUMER.CREATE.TESTINVITE." + sinkConsumer, func(ctx context.Context) error {
				_, err := rjs.CreateOrUpdateConsumer(ctx, "TESTINVITE", jetstream.ConsumerConfig{Durable: sinkConsumer, AckPolicy: jetstream.AckNonePolicy})
				return err
			}},
			{"delete the sink's consumer", "$JS.API.CONSUMER.DELETE.TESTINVITE." + sinkConsumer, func(ctx context.Context) error {
				return rjs.DeleteConsumer(ctx, "TESTINVITE", sinkConsumer)
			}},
		}
		var wg sync.WaitGroup
		for _, a := range attempts {
			wg.Go(func() {
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if err := a.run(actx); err == nil && a.subject != subject {
					t.Errorf("tisync_reader could %s", a.name)
				}
			})
		}
		wg.Wait()

		for _, a := range attempts {
			err := waitFor(5*time.Second, func() error {
				mu.Lock()
				defer mu.Unlock()
				for _, v := range violations {
					if strings.Contains(strings.ToLower(v), "permissions violation") && strings.Contains(v, `"`+a.subject+`"`) {
						return nil
					}
				}
				return fmt.Errorf("no permissions violation for %s among %q", a.subject, violations)
			})
			if err != nil {
				t.Errorf("%s as tisync_reader: %v", a.name, err)
			}
		}
		if _, err := js.Consumer(ctx, "TESTINVITE", sinkConsumer); err != nil {
			t.Errorf("the sink's consumer %s is gone: %v", sinkConsumer, err)
		}
	})
}
