module pprof-controller/demo-target

go 1.19
