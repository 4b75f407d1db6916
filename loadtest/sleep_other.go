//go:build !linux

package loadtest

import "time"

func preciseSleep(d time.Duration) { time.Sleep(d) }
