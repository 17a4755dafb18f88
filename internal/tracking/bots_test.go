package tracking_test

import (
	"net/http"
	"testing"

	"github.com/navad/navad/internal/tracking"
)

func TestDeclaredBot(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   bool
	}{
		{"iPhone Safari", map[string]string{"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"}, false},
		{"Android Chrome", map[string]string{"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"}, false},
		{"a Cubot phone", map[string]string{"User-Agent": "Mozilla/5.0 (Linux; Android 12; CUBOT X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"}, false},
		{"an app's HTTP library", map[string]string{"User-Agent": "okhttp/4.12.0"}, false},
		{"a publisher's server", map[string]string{"User-Agent": "Go-http-client/1.1"}, false},
		{"no user agent", map[string]string{}, false},
		{"Googlebot", map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, true},
		{"bingbot", map[string]string{"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"}, true},
		{"a Cubot phone running a bot", map[string]string{"User-Agent": "CUBOT X50 SomeCrawlerBot/1.0"}, true},
		{"Slack unfurl", map[string]string{"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}, true},
		{"Slack image proxy", map[string]string{"User-Agent": "Slack-ImgProxy (+https://api.slack.com/robots)"}, true},
		{"Facebook", map[string]string{"User-Agent": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"}, true},
		{"WhatsApp preview", map[string]string{"User-Agent": "WhatsApp/2.23.20.0"}, true},
		{"LINE preview", map[string]string{"User-Agent": "facebookexternalhit/1.1;line-poker/1.0"}, true},
		{"Yahoo Japan", map[string]string{"User-Agent": "Y!J-WSC/1.0 (Yahoo! Slurp)"}, true},
		{"Baidu", map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Baiduspider/2.0)"}, true},
		{"headless Chrome", map[string]string{"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/124.0.0.0 Safari/537.36"}, true},
		{"Chrome prefetch", map[string]string{"Sec-Purpose": "prefetch", "User-Agent": "Mozilla/5.0 Chrome/124.0"}, true},
		{"Chrome prerender", map[string]string{"Sec-Purpose": "prefetch;prerender"}, true},
		{"legacy prefetch", map[string]string{"Purpose": "prefetch"}, true},
		{"Safari preview", map[string]string{"X-Purpose": "preview"}, true},
		{"Firefox prefetch", map[string]string{"X-Moz": "prefetch"}, true},
		{"an unrelated purpose", map[string]string{"Purpose": "navigation"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			rule, got := tracking.DeclaredBot(h)
			if got != tt.want {
				t.Fatalf("DeclaredBot = %v (rule %q), want %v", got, rule, tt.want)
			}
			if got && rule == "" {
				t.Fatal("a match without a rule")
			}
		})
	}
}

// TestDeclaredBotReadsEveryValue: a header sent twice is read in full, so
// a first, harmless value does not hide a second that declares a prefetch
// or a bot.
func TestDeclaredBotReadsEveryValue(t *testing.T) {
	for _, tt := range []struct {
		name  string
		field string
		vals  []string
	}{
		{"Purpose twice", "Purpose", []string{"navigation", "prefetch"}},
		{"Sec-Purpose twice", "Sec-Purpose", []string{"", "prefetch"}},
		{"User-Agent twice", "User-Agent", []string{"Mozilla/5.0 (iPhone) Safari/604.1", "Googlebot/2.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.vals {
				h.Add(tt.field, v)
			}
			if rule, ok := tracking.DeclaredBot(h); !ok || rule == "" {
				t.Fatalf("DeclaredBot(%s: %q) = %q, %v; want a match", tt.field, tt.vals, rule, ok)
			}
		})
	}
}
