package config

import (
	"bufio"
	"os"
	"strings"
)

// ReadLines reads the non-empty lines of a small file of secrets or names
// (push tokens, dashboard users), trimmed, without # comments.
func ReadLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, t)
		}
	}
	return out, sc.Err()
}
