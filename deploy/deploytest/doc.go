// Package deploytest checks the deployment files in deploy/ and the
// Dockerfile with the tools that consume them: the Helm chart rendered by
// Helm's Go library for each values file, every rendered and plain
// Kubernetes manifest decoded strictly into the official API types, the
// compose file loaded by compose-go, the systemd unit through
// systemd-analyze verify, the image built and run by podman where the
// machine allows, and the deployment runbook's plain-binary and systemd
// steps followed end to end.
//
// It is a module of its own so that Helm's and Kubernetes' dependencies
// never reach the engram-ops binary's module graph. The check that every
// command, flag, variable, port, probe path and metric these files name
// exists in the binary is cmd/engram-ops's TestDeployFilesMatchTheBinary,
// which reads the chart's renderings this package writes to
// deploy/helm/rendered (go test -update regenerates them).
package deploytest
