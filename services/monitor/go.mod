module github.com/tandem-ha/tandem/services/monitor

go 1.26.0

require github.com/tandem-ha/tandem/pkg v0.0.0-00010101000000-000000000000

replace github.com/tandem-ha/tandem/pkg => ../../pkg
