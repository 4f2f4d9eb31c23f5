// Command probe runs the logbridge conformance checks against one
// MongoDB-wire-compatible server and prints a markdown table, one row as each
// check finishes.
//
//	go run ./tests/conformance/cmd/probe --uri 'mongodb://127.0.0.1:27018/?directConnection=true' --name source
//
// --json FILE also writes the results as JSON; --merge FILE... prints a
// server x check matrix from JSON files written earlier (no server needed).
// The exit code is 0 when the probe ran (whatever the results), 2 when it could
// not connect.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/logbridge/logbridge/tests/conformance"
)

type runFile struct {
	Name    string               `json:"name"`
	URI     string               `json:"uri"`
	Date    string               `json:"date"`
	Results []conformance.Result `json:"results"`
}

func main() {
	uri := flag.String("uri", os.Getenv("MONGO_URI"), "server URI (mongodb://...)")
	name := flag.String("name", "server", "server name for the table column")
	checks := flag.String("checks", "", "comma-separated check or result names (default: all)")
	timeout := flag.Duration("check-timeout", 30*time.Second, "time limit of one check")
	wait := flag.Duration("wait", 8*time.Second, "how long to wait for change events")
	jsonOut := flag.String("json", "", "also write results as JSON to this file")
	merge := flag.Bool("merge", false, "print a server x check matrix from the JSON files given as arguments")
	list := flag.Bool("list", false, "list the checks and exit")
	scope := flag.String("watch-scope", "cluster", "where change-stream checks watch: cluster, database or collection")
	poll := flag.Bool("poll-monitoring", false, "use serverMonitoringMode=poll (needed for jongodb; the driver ignores it in the URI)")
	flag.Parse()

	if *list {
		fmt.Println("| check | result names | role | what genuine MongoDB does |\n|---|---|---|---|")
		for _, c := range conformance.Checks() {
			fmt.Printf("| %s | %s | %s | %s |\n", c.Name, strings.Join(c.ResultNames(), ", "), c.Role, c.Desc)
		}
		return
	}
	if *merge {
		os.Exit(doMerge(flag.Args()))
	}
	if *uri == "" {
		fmt.Fprintln(os.Stderr, "probe: --uri is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	fmt.Printf("<!-- %s: %s, %s -->\n", *name, *uri, time.Now().UTC().Format(time.RFC3339))
	conformance.MarkdownHeader(os.Stdout, *name)
	opts := conformance.Options{
		CheckTimeout:   *timeout,
		Wait:           *wait,
		PollMonitoring: *poll,
		WatchScope:     *scope,
		OnResult:       func(r conformance.Result) { conformance.MarkdownRow(os.Stdout, r) },
	}
	if *checks != "" {
		opts.Only = strings.Split(*checks, ",")
	}
	results, err := conformance.Probe(ctx, *uri, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		fmt.Printf("| connect | ERROR | %s |\n", strings.ReplaceAll(err.Error(), "|", "\\|"))
		os.Exit(2)
	}
	counts := map[conformance.Status]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	fmt.Printf("\n%s: %d PASS, %d FAIL, %d ERROR, %d SKIP\n", *name, counts[conformance.Pass], counts[conformance.Fail], counts[conformance.Error], counts[conformance.Skip])
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(runFile{Name: *name, URI: *uri, Date: time.Now().UTC().Format(time.RFC3339), Results: results}, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		}
	}
}

func doMerge(files []string) int {
	var servers []string
	results := map[string][]conformance.Result{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		var rf runFile
		if err := json.Unmarshal(b, &rf); err != nil {
			fmt.Fprintf(os.Stderr, "probe: %s: %v\n", f, err)
			return 1
		}
		servers = append(servers, rf.Name)
		results[rf.Name] = rf.Results
	}
	conformance.MatrixMarkdown(os.Stdout, servers, results)
	fmt.Println()
	for _, s := range servers {
		counts := map[conformance.Status]int{}
		for _, r := range results[s] {
			counts[r.Status]++
		}
		fmt.Printf("- %s: %d PASS, %d FAIL, %d ERROR\n", s, counts[conformance.Pass], counts[conformance.Fail], counts[conformance.Error])
	}
	return 0
}
