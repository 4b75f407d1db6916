//go:build !linux

package attack

import "time"

func preciseSleep(d time.Duration) { time.Sleep(d) }
