package config

import (
	"strings"
	"testing"
)

func TestDashboardTiles(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		getenv   func(string) string
		want     string
		wantErrs []string
	}{
		{name: "none by default", getenv: env()},
		{
			name:   "from the environment",
			getenv: env("NAVAD_DASHBOARD_TILES", "https://tile.example.com/{z}/{x}/{y}.png", "NAVAD_DASHBOARD_TILES_ATTRIBUTION", "© Example"),
			want:   "https://tile.example.com/{z}/{x}/{y}.png",
		},
		{
			name:   "the flag wins",
			args:   []string{"--dashboard-tiles", "http://127.0.0.1:8081/{z}/{x}/{y}.png"},
			getenv: env("NAVAD_DASHBOARD_TILES", "https://tile.example.com/{z}/{x}/{y}.png"),
			want:   "http://127.0.0.1:8081/{z}/{x}/{y}.png",
		},
		{
			name:     "a bad template is reported with the other problems",
			getenv:   env("NAVAD_DASHBOARD_TILES", "tiles/{z}/{x}.png", "NAVAD_TIMEZONE", "Mars/Olympus"),
			wantErrs: []string{"absolute http or https", "must contain {y}", "timezone"},
		},
		{
			name:     "an attribution without tiles",
			args:     []string{"--dashboard-tiles-attribution", "© nobody"},
			getenv:   env(),
			wantErrs: []string{"without a tile URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, tt.getenv)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.Dashboard().Tiles != tt.want {
					t.Fatalf("tiles %q, want %q", c.Dashboard().Tiles, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
