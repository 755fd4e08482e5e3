package profile

import "strings"

// AgentFamily reduces a User-Agent header to the family a credential's
// client keeps across upgrades: for browsers, engine brand and operating
// system ("chrome/windows"); for everything else, the first product token
// without its version ("python-requests", "okhttp", "Go-http-client").
// Version changes are routine; a change of family is evidence.
//
// The result is a constant or a substring of ua: no allocation.
func AgentFamily(ua string) string {
	ua = strings.TrimSpace(ua)
	if !strings.HasPrefix(ua, "Mozilla/") {
		end := strings.IndexAny(ua, "/ ;(")
		if end < 0 {
			end = len(ua)
		}
		end = min(end, 48)
		if end == 0 {
			return "unknown"
		}
		return ua[:end]
	}
	b := 0
	switch {
	case strings.Contains(ua, "Edg/") || strings.Contains(ua, "Edge/"):
		b = 1
	case strings.Contains(ua, "OPR/") || strings.Contains(ua, "Opera"):
		b = 2
	case strings.Contains(ua, "Firefox/") || strings.Contains(ua, "FxiOS/"):
		b = 3
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "CriOS/") || strings.Contains(ua, "Chromium/"):
		b = 4
	case strings.Contains(ua, "Safari/"):
		b = 5
	}
	o := 0
	switch {
	case strings.Contains(ua, "Android"):
		o = 1
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad") || strings.Contains(ua, "iOS"):
		o = 2
	case strings.Contains(ua, "Windows"):
		o = 3
	case strings.Contains(ua, "Mac OS X") || strings.Contains(ua, "Macintosh"):
		o = 4
	case strings.Contains(ua, "CrOS"):
		o = 5
	case strings.Contains(ua, "Linux"):
		o = 6
	}
	return browserFamilies[b][o]
}

var browserFamilies = [6][7]string{
	{"mozilla/other", "mozilla/android", "mozilla/ios", "mozilla/windows", "mozilla/macos", "mozilla/chromeos", "mozilla/linux"},
	{"edge/other", "edge/android", "edge/ios", "edge/windows", "edge/macos", "edge/chromeos", "edge/linux"},
	{"opera/other", "opera/android", "opera/ios", "opera/windows", "opera/macos", "opera/chromeos", "opera/linux"},
	{"firefox/other", "firefox/android", "firefox/ios", "firefox/windows", "firefox/macos", "firefox/chromeos", "firefox/linux"},
	{"chrome/other", "chrome/android", "chrome/ios", "chrome/windows", "chrome/macos", "chrome/chromeos", "chrome/linux"},
	{"safari/other", "safari/android", "safari/ios", "safari/windows", "safari/macos", "safari/chromeos", "safari/linux"},
}
