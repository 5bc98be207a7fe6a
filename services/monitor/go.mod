module github.com/tandem-ha/tandem/services/monitor

go 1.26.0

require github.com/tandem-ha/tandem/pkg v0.0.0-00010101000000-000000000000

require (
	github.com/cockroachdb/datadriven v1.0.3 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
)

replace github.com/tandem-ha/tandem/pkg => ../../pkg
