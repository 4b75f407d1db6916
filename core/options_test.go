package core

import (
	"reflect"
	"testing"
)

// The zero Options take every required field from DefaultOptions and
// leave the switches that are off at 0 off.
func TestZeroOptionsDefaultRequiredFieldsOnly(t *testing.T) {
	o := withDefaults(Options{})
	d := DefaultOptions()
	if o.Tiers.SweepInterval != 0 || o.ChangeLog.Retention != 0 || o.MinFreeBytes != 0 || o.Limits.MaxSpaces != 0 || o.Index.MaxPending != 0 {
		t.Errorf("switches turned on: sweep %v, retention %v, min free %d, max spaces %d, max pending %d",
			o.Tiers.SweepInterval, o.ChangeLog.Retention, o.MinFreeBytes, o.Limits.MaxSpaces, o.Index.MaxPending)
	}
	o.Tiers.SweepInterval, o.ChangeLog.Retention, o.MinFreeBytes, o.Limits.MaxSpaces, o.Index.MaxPending =
		d.Tiers.SweepInterval, d.ChangeLog.Retention, d.MinFreeBytes, d.Limits.MaxSpaces, d.Index.MaxPending
	o.Logger, o.Now, o.Embedders, o.DiskFree = nil, nil, nil, nil
	if !reflect.DeepEqual(o, d) {
		t.Errorf("defaulted zero options\n%+v\nwant\n%+v", o, d)
	}
	// Set values are kept.
	if got := withDefaults(DefaultOptions()); got.Tiers.SweepInterval != d.Tiers.SweepInterval || got.MinFreeBytes != d.MinFreeBytes {
		t.Errorf("defaults changed by withDefaults: %+v", got)
	}
}
