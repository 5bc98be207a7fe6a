package monitor

import "github.com/tandem-ha/tandem/services/monitor/internal/epochfile"

// SetSave replaces how s writes epoch.json; call it before Run.
func SetSave(s *Service, save func(dir string, e epochfile.Epochs) error) { s.save = save }
