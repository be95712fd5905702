module pprof-controller/load-target

go 1.19
