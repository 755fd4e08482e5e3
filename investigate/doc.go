// Package investigate answers, from a replayed log, "which credentials were
// abused, and since when?": for every credential with suspicious events
// (decided at or above Options.MinLevel, throttle by default) it reports
// when it first deviated, from where, what it did since, why vigil
// thinks so, and a timeline; `vigil investigate` writes it for a terminal
// (WriteText) and as one self-contained HTML page (WriteHTML).
//
// # Collecting
//
// A Collector is fed every judged event through replay.Options.Observe,
// on the engine's goroutine, in input order. Observe is on the replay's
// one sequential stage, so it keeps per event a handful of counters and
// bounded lists, and allocates nothing for an allowed event of a
// credential it knows (see BenchmarkObserve). It copies the strings it
// keeps: endpoints once, into a table shared by all credentials, whose
// ids the credentials hold.
//
// # The deviation and what is new
//
// A credential's deviation is its first event, in input order, decided
// at or above MinLevel. Everything before it is its history: the
// addresses, ASNs, countries and endpoints of those events, counted.
// From the deviation on, the suspicious events are counted by address,
// ASN and country, and all events by endpoint (with how many of them were
// suspicious, their bytes and errors). A value of those is New when no
// event of the history had it. The decision is the engine's, hysteresis
// included: an owner's request held at throttle by the attacker's risk a
// minute before is suspicious too, and its (known) network shows as such.
//
// # Bounds
//
// Memory is bounded however long the log and however many credentials:
//
//   - At most MaxCredentials (100,000) are tracked. When a new one would
//     exceed that, the least risky tenth are dropped (no suspicious event
//     first, then the lowest peak risk, then the longest unseen) and
//     counted in Report.Dropped. A dropped credential seen again starts
//     over; a 128 KiB filter of dropped token ids marks it
//     HistoryIncomplete (rarely, a new one that hashes alike too).
//   - The history keeps at most 32 addresses, 16 ASNs, 16 countries and 32
//     endpoints per credential. Values beyond are counted as "elsewhere"
//     and remembered in a 1024-bit hashed set (a Bloom filter with one
//     hash): a clear bit proves a value unseen, so New is never claimed
//     wrongly; a collision can only withhold it.
//   - Since the deviation, at most 64 values per dimension and 256
//     endpoints are kept; beyond, events are counted as "elsewhere".
//   - MaxTimeline (500) points per credential: half of them suspicious
//     events in full (the first quarter of the budget for the first ones,
//     the next quarter a ring of the latest; Credential.TimelineOmitted
//     counts those between), half a risk series of all of its events —
//     at most 32 points for the history, the rest from the deviation on.
//     Each series fills one point per event; when full, neighbouring
//     points merge pairwise, keeping the riskier, and every point stands
//     for twice as many events. The series is exact for a short log,
//     never loses a spike, and costs O(1) per event.
//
// # Rendering
//
// Values from logs are escaped where they are shown: html/template
// escapes them for the page, and the text report writes control
// characters (a terminal's escape sequences), bidirectional overrides
// and invalid UTF-8 as escapes. The page has no scripts and refers to
// nothing outside itself; its charts are inline SVG whose dots have
// their exact time and risk as tooltips. A short log draws sensibly: one
// event is centred, and a few events close in time are spread apart just
// enough to be seen.
package investigate
