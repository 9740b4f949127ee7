// The pod sandbox's process: holds the pod's namespaces and waits for the signal to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// As PID 1 of a shared PID namespace it must reap orphans, or they stay zombies.
	signal.Ignore(syscall.SIGCHLD)
	<-stop
}
