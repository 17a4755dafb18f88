package tracking

import (
	"net/http"
	"strings"
)

// Declared bots and prefetchers, in the spirit of the IAB/MRC general
// invalid traffic (GIVT) rules: traffic that says what it is (a robot's
// user agent, a browser's prefetch or preview header) is answered like
// anyone else but never counted. Sophisticated invalid traffic, which
// hides, is out of scope here; signed tokens that count once are what
// keeps it from inflating numbers.
//
// A request is a declared bot or prefetch when any of these holds:
//
//   - a Purpose, X-Purpose, Sec-Purpose or X-Moz header says prefetch,
//     preview or prerender (browsers' speculative loads, link previews);
//   - its User-Agent contains, ignoring case, one of BotUserAgents and
//     none of BotUserAgentExceptions.
//
// Generic HTTP libraries (curl, okhttp, Go-http-client) are not on the
// list: publishers may fire tracking URLs from their own servers.

// PrefetchHeaders are the request headers whose value, when it mentions
// prefetch, preview or prerender, marks a speculative or preview load.
var PrefetchHeaders = []string{"Purpose", "X-Purpose", "Sec-Purpose", "X-Moz"}

// prefetchWords are the values of PrefetchHeaders that mark a prefetch.
var prefetchWords = []string{"prefetch", "preview", "prerender"}

// BotUserAgents are lower-case fragments of the user agents of declared
// robots: crawlers, link unfurlers, monitors and headless browsers.
var BotUserAgents = []string{
	"bot", "crawl", "spider", "slurp", // the generic self-descriptions
	"facebookexternalhit", "facebookcatalog", "whatsapp", "embedly",
	"slack-imgproxy", "skypeuripreview", "bingpreview", "google web preview",
	"mediapartners-google", "google-inspectiontool", "google-read-aloud",
	"feedfetcher", "ia_archiver", "archive.org", "vkshare",
	"headlesschrome", "phantomjs", "lighthouse", "pagespeed", "prerender",
	"pingdom", "statuscake", "site24x7", "scrapy", "httrack", "w3c_validator",
}

// BotUserAgentExceptions are lower-case fragments of real browsers' user
// agents that contain a BotUserAgents fragment by accident (Cubot is a phone
// maker).
var BotUserAgentExceptions = []string{"cubot"}

// DeclaredBot reports whether the request headers declare a robot or a
// prefetch (see the list above), and which rule matched. It is cheap: a
// lower-casing of the user agent and substring searches.
func DeclaredBot(h http.Header) (rule string, ok bool) {
	// Every value of each header: a header given twice must not hide the
	// value that declares a prefetch or a bot behind one that does not.
	for _, name := range PrefetchHeaders {
		for _, v := range h.Values(name) {
			lv := strings.ToLower(v)
			for _, w := range prefetchWords {
				if strings.Contains(lv, w) {
					return name + ": " + w, true
				}
			}
		}
	}
	for _, v := range h.Values("User-Agent") {
		ua := strings.ToLower(v)
		for _, frag := range BotUserAgents {
			if strings.Contains(ua, frag) && !excepted(ua, frag) {
				return "user agent: " + frag, true
			}
		}
	}
	return "", false
}

// excepted reports whether frag matched ua only inside a known exception.
func excepted(ua, frag string) bool {
	for _, ex := range BotUserAgentExceptions {
		if strings.Contains(ex, frag) && strings.Contains(ua, ex) {
			// Matched inside the exception; look for frag elsewhere.
			if !strings.Contains(strings.ReplaceAll(ua, ex, ""), frag) {
				return true
			}
		}
	}
	return false
}
