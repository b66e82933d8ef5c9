package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) healthCommand() *cobra.Command {
	var (
		ready   bool
		addr    string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health [--ready]",
		Short: "Check a running daemon's /healthz (or /readyz with --ready); exit 0 when healthy",
		Long: `health asks the daemon's HTTP listener (http.listen, or --addr) for /healthz, or for /readyz
with --ready, and exits with 0 when it answers 200 and with 1 otherwise. It is meant for container
health checks in images without a shell or curl, such as tisync's distroless image.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				if err := a.loadWithoutPoll(); err != nil {
					return err
				}
				if !a.cfg.HTTP.Enabled() {
					return errors.New("http.listen is none: the daemon serves no health endpoints; set http.listen or pass --addr")
				}
				addr = a.cfg.HTTP.Listen
			}
			if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
				return &usageError{fmt.Errorf("--addr %q is invalid: expected host:port such as 127.0.0.1:9464", addr)}
			}
			path := "/healthz"
			if ready {
				path = "/readyz"
			}
			url := "http://" + dialable(addr) + path
			client := &http.Client{Timeout: timeout}
			resp, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("%s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
			fmt.Fprintf(a.stdout, "%s: ok\n", url)
			return nil
		},
	}
	cmd.Flags().BoolVar(&ready, "ready", false, "check /readyz (NATS, ClickHouse and the scheduler) instead of /healthz")
	cmd.Flags().StringVar(&addr, "addr", "", "host:port of the daemon's HTTP listener (default: http.listen)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// dialable turns a listen address into one a client can dial: an unspecified host such as 0.0.0.0
// becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
