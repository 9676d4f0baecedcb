// Command mkdeb builds gatemq's .deb packages with the nfpm library from
// packaging/nfpm.yaml, one per architecture, from the static binaries that
// make build-dist leaves in dist/. make deb builds it and runs it from the
// repository root:
//
//	go -C tools/mkdeb build -o ../../dist/mkdeb .
//	dist/mkdeb -version 1.2.0 -dist dist amd64 arm64 armhf
//
// It lives in its own module so that nfpm and its dependencies stay out of
// gatemq's.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// arches maps Debian architectures to nfpm's names and the binaries'
// suffixes in dist/.
var arches = map[string]struct{ nfpm, binary string }{
	"amd64": {"amd64", "linux-amd64"},
	"arm64": {"arm64", "linux-arm64"},
	"armhf": {"arm7", "linux-armv7"},
}

func main() {
	config := flag.String("config", "packaging/nfpm.yaml", "nfpm configuration `file`")
	version := flag.String("version", "dev", "package version (git describe output is turned into a Debian version)")
	dist := flag.String("dist", "dist", "`directory` of the binaries (gatemq-linux-ARCH) and the packages")
	example := flag.String("example", "scripts/gatemq.toml", "example configuration `file`, installed with data_dir /var/lib/gatemq")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkdeb [flags] amd64|arm64|armhf ...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	v := debVersion(*version)
	conffile := filepath.Join(*dist, "gatemq.toml")
	if err := writeConffile(conffile, *example); err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(1)
	}
	for _, arch := range flag.Args() {
		path, err := build(*config, *dist, arch, v, conffile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mkdeb: %s: %v\n", arch, err)
			os.Exit(1)
		}
		fmt.Println(path)
	}
}

// dataDirLine is the example's data_dir line, with the spaces that align
// its comment.
var dataDirLine = regexp.MustCompile(`(?m)^data_dir = "[^"]*" *`)

// writeConffile writes the example configuration to path with data_dir
// /var/lib/gatemq, the directory the unit passes with -data-dir, as
// scripts/install.sh installs it.
func writeConffile(path, example string) error {
	b, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	out := dataDirLine.ReplaceAll(b, []byte(`data_dir = "/var/lib/gatemq"      `))
	if string(out) == string(b) {
		return fmt.Errorf("%s: no data_dir line to set", example)
	}
	return os.WriteFile(path, out, 0o644)
}

func build(config, dist, arch, version, conffile string) (string, error) {
	a, ok := arches[arch]
	if !ok {
		return "", fmt.Errorf("unknown architecture (want amd64, arm64 or armhf)")
	}
	env := map[string]string{
		"ARCH":    a.nfpm,
		"VERSION": version,
		"BINARY":  filepath.Join(dist, "gatemq-"+a.binary),
		"CONFIG":  conffile,
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(k string) string { return env[k] })
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	path := filepath.Join(dist, deb.Default.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("package: %w", err)
	}
	return path, f.Close()
}

var releaseTag = regexp.MustCompile(`^v?([0-9]+\.[0-9A-Za-z.+~]*)$`)

// debVersion turns `git describe --tags --always --dirty` output into a
// Debian version: v1.2.0 is 1.2.0, v1.2.0-3-gabc1234 is 1.2.0+3.gabc1234,
// a bare commit abc1234(-dirty) is 0.0.0~git.abc1234(.dirty), sorting
// before any release.
func debVersion(v string) string {
	tag, rest, _ := strings.Cut(v, "-")
	if m := releaseTag.FindStringSubmatch(tag); m != nil {
		if rest == "" {
			return m[1]
		}
		return m[1] + "+" + strings.ReplaceAll(rest, "-", ".")
	}
	return "0.0.0~git." + strings.ReplaceAll(v, "-", ".")
}
