package config

import (
	"strings"
	"testing"
)

func TestHugePages(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		want    bool
		wantErr string
	}{
		{name: "on by default", getenv: env(), want: true},
		{name: "off from the environment", getenv: env("NAVAD_HUGE_PAGES", "false"), want: false},
		{name: "the flag wins", args: []string{"--huge-pages=true"}, getenv: env("NAVAD_HUGE_PAGES", "0"), want: true},
		{name: "not a boolean", getenv: env("NAVAD_HUGE_PAGES", "sometimes"), wantErr: "NAVAD_HUGE_PAGES: not true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, tt.getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HugePages != tt.want {
				t.Fatalf("HugePages %v, want %v", c.HugePages, tt.want)
			}
		})
	}
}
