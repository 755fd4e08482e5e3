module github.com/vigil-sec/vigil

go 1.26.8

require (
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/goccy/go-json v0.12.0
	gopkg.in/yaml.v3 v3.0.1
)
