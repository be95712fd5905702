// etcd for the test control plane: the server's own entry point, built in the same module graph
// as the Kubernetes components (`go install` of go.etcd.io/etcd/server/v3 cannot be used for the
// same replace-directive reason as k8s.io/kubernetes).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
