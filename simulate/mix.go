package simulate

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// A mix is a named set of options: which archetypes, how many credentials
// of each, which attacks and when. Evaluation runs the default mix and
// others to see how a detector fares when the population changes.
type mix struct {
	name, doc string
	build     func(o *Options)
}

// allAttackNames lists every built-in attack once.
var allAttackNames = []string{"cloud_exfil", "proxy_replay", "scope_probe", "bola", "lowslow", "dormant", "minted"}

// twice returns every attack twice, interleaved so that the first run of
// each picks its victim before the second runs of any.
func twice(names []string) []string { return slices.Concat(names, names) }

// dormantCohorts are owners who stopped weeks before the window: a
// decommissioned export job and a former employee, silent 45 and 50 days
// when the window opens. Their credentials are the dormant attack's
// victims.
func dormantCohorts(n int) []Cohort {
	return []Cohort{
		{Archetype: "etl", Count: (n + 1) / 2, Tag: "retired", History: 66 * 24 * time.Hour, QuietAfter: 21 * 24 * time.Hour},
		{Archetype: "browser", Count: n / 2, Tag: "departed", History: 64 * 24 * time.Hour, QuietAfter: 14 * 24 * time.Hour},
	}
}

func defaultMix(o *Options) {
	o.Credentials = map[string]int{"browser": 8, "mobile": 12, "etl": 3, "poller": 3,
		"ci": 3, "multiregion": 3, "healthcheck": 3, "traveller": 3, "vpn": 3}
	o.Cohorts = append(dormantCohorts(2),
		// A new customer connects the chat integration: a new token of a
		// known client, first used from the client's usual network.
		Cohort{Archetype: "poller", Count: 1, Tag: "new", History: -2 * 24 * time.Hour},
		// Back from leave: silent 35 days, then working as before.
		Cohort{Archetype: "browser", Count: 1, Tag: "leave", History: 40 * 24 * time.Hour,
			QuietAfter: 3 * 24 * time.Hour, ResumeAfter: 38 * 24 * time.Hour})
	o.Attacks = twice(allAttackNames)
}

var mixes = []mix{
	{"default", "the evaluation workload: 7 days, every benign archetype (≥ 3 credentials each), every attack twice on different victims, dormant owners with weeks of history, a new credential of a known client first used mid-window, a user back from 5 weeks of leave",
		defaultMix},
	{"small", "a quick run: 3 days, one or two credentials per archetype, every attack once",
		func(o *Options) {
			o.Duration = 72 * time.Hour
			o.Credentials = map[string]int{"browser": 2, "mobile": 2, "etl": 1, "poller": 2,
				"ci": 1, "multiregion": 1, "healthcheck": 1, "traveller": 1, "vpn": 1}
			o.Cohorts = dormantCohorts(1)
			o.Attacks = slices.Clone(allAttackNames)
		}},
	{"workforce", "people rather than machines: many browser, mobile, travelling and VPN users, few services; the attacks that target people, twice",
		func(o *Options) {
			o.Credentials = map[string]int{"browser": 20, "mobile": 20, "etl": 1, "poller": 2,
				"ci": 1, "multiregion": 1, "healthcheck": 1, "traveller": 8, "vpn": 8}
			o.Cohorts = dormantCohorts(2)
			o.Attacks = twice([]string{"proxy_replay", "scope_probe", "bola", "lowslow", "dormant", "cloud_exfil"})
		}},
	{"services", "machines rather than people: ETL jobs, integrations, CI, multi-region services and monitors, few users; every attack twice",
		func(o *Options) {
			o.Credentials = map[string]int{"browser": 3, "mobile": 3, "etl": 6, "poller": 6,
				"ci": 6, "multiregion": 4, "healthcheck": 4, "traveller": 1, "vpn": 1}
			o.Cohorts = append(dormantCohorts(2),
				Cohort{Archetype: "poller", Count: 2, Tag: "new", History: -2 * 24 * time.Hour})
			o.Attacks = twice(allAttackNames)
		}},
	{"benign", "the default population with no attack: every alert is a false positive",
		func(o *Options) {
			defaultMix(o)
			o.Attacks = nil
		}},
}

func mixByName(name string) *mix {
	for i := range mixes {
		if mixes[i].name == name {
			return &mixes[i]
		}
	}
	return nil
}

// MixDuration is the length of a mix's window unless it sets its own.
const MixDuration = 7 * 24 * time.Hour

// Mixes returns the names of the built-in mixes and a line about each.
func Mixes() [][2]string {
	out := make([][2]string, len(mixes))
	for i, m := range mixes {
		out[i] = [2]string{m.name, m.doc}
	}
	return out
}

// Mix returns the options of a named mix with the given seed and window
// length (zero: the mix's own). Attacks begin after 3/7 of the window
// (at least two days, or two thirds of a shorter window) and start within
// the next 5/14, so that the longest attack mostly ends inside the window.
func Mix(name string, seed uint64, duration time.Duration) (Options, error) {
	m := mixByName(name)
	if m == nil {
		names := make([]string, len(mixes))
		for i, x := range mixes {
			names[i] = x.name
		}
		return Options{}, fmt.Errorf("simulate: no mix %q (have %s)", name, strings.Join(names, ", "))
	}
	o := Options{Seed: seed, Duration: MixDuration}
	m.build(&o)
	if duration != 0 {
		o.Duration = duration
	}
	for i := range o.Cohorts {
		// A credential issued during the window is issued in its first third.
		o.Cohorts[i].History = max(o.Cohorts[i].History, -o.Duration/3)
	}
	o.AttackAfter = max(o.Duration*3/7, min(48*time.Hour, o.Duration*2/3)).Truncate(time.Hour)
	o.AttackWindow = (o.Duration * 5 / 14).Truncate(time.Minute)
	if o.AttackAfter+o.AttackWindow > o.Duration {
		o.AttackWindow = o.Duration - o.AttackAfter
	}
	return o, nil
}
