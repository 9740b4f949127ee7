// The client-go side of `deno task bench watch_loop --vs-client-go`: the same phases as the Deno side, with
// client-go v0.34.2 at its defaults (protobuf for built-in kinds, an informer's first LIST at
// resourceVersion=0&limit=500, managedFields kept). Prints one JSON object on stdout per run.
//
//	sync     --kubeconfig K --namespace NS --from-rv RV --backlog N
//	         informer LIST + sync of every pod in NS (time, heap held after GC), then a raw watch from RV
//	         that replays N events into a cache.Store (events/s)
//	watchers --kubeconfig K --count N --node NODE
//	         N informers of NODE's pods (fieldSelector spec.nodeName); prints {"synced":ms} once all are
//	         synced, then keeps watching until stdin closes
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: client-go-bench sync|watchers [flags]"))
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig path")
	namespace := fs.String("namespace", "bench", "namespace of the pods")
	fromRV := fs.String("from-rv", "", "resourceVersion the replay watch starts from")
	backlog := fs.Int("backlog", 0, "events the replay waits for")
	count := fs.Int("count", 100, "informers (watchers mode)")
	node := fs.String("node", "node-0", "node whose pods the watchers follow")
	_ = fs.Parse(os.Args[2:])

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.UserAgent = "bench-client-go"
	// Defaults otherwise; only the client-side rate limit is lifted so the replay is not throttled.
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	switch mode {
	case "sync":
		runSync(cs, *namespace, *fromRV, *backlog)
	case "watchers":
		runWatchers(cs, *count, *node)
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func runSync(cs *kubernetes.Clientset, namespace, fromRV string, backlog int) {
	out := map[string]any{}
	before := heapBytes()
	stop := make(chan struct{})
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	inf := factory.Core().V1().Pods().Informer()
	start := time.Now()
	factory.Start(stop)
	// cache.WaitForCacheSync polls every 100 ms, too coarse to time a sync; poll every millisecond instead.
	waitSynced(inf.HasSynced)
	out["syncMs"] = float64(time.Since(start).Microseconds()) / 1000
	out["pods"] = len(inf.GetStore().ListKeys())
	out["heapMiB"] = float64(heapBytes()-before) / (1 << 20)
	runtime.KeepAlive(inf)
	close(stop)
	factory.Shutdown()

	if backlog > 0 {
		store := cache.NewStore(cache.MetaNamespaceKeyFunc)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		w, err := cs.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: fromRV})
		if err != nil {
			fail(err)
		}
		seen := 0
		var t0 time.Time
		for ev := range w.ResultChan() {
			if seen == 0 {
				t0 = time.Now()
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				_ = store.Update(ev.Object.(*corev1.Pod))
			case watch.Error:
				fail(fmt.Errorf("watch error: %v", ev.Object))
			}
			seen++
			if seen >= backlog {
				break
			}
		}
		w.Stop()
		// Timed from the first event, as the Deno side does: the request itself is not part of the rate.
		secs := time.Since(t0).Seconds()
		out["replayEvents"] = seen
		out["replayPerSec"] = float64(seen-1) / secs
	}
	emit(out)
}

func runWatchers(cs *kubernetes.Clientset, count int, node string) {
	stop := make(chan struct{})
	synced := make([]cache.InformerSynced, 0, count)
	start := time.Now()
	for i := 0; i < count; i++ {
		// One factory per watcher: each is what one NMI on that node would run.
		f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + node
		}))
		inf := f.Core().V1().Pods().Informer()
		synced = append(synced, inf.HasSynced)
		f.Start(stop)
	}
	waitSynced(synced...)
	emit(map[string]any{"synced": float64(time.Since(start).Microseconds()) / 1000})
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
}

func waitSynced(synced ...cache.InformerSynced) {
	deadline := time.Now().Add(5 * time.Minute)
	for _, s := range synced {
		for !s() {
			if time.Now().After(deadline) {
				fail(fmt.Errorf("informers did not sync within 5 minutes"))
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "client-go-bench:", err)
	os.Exit(1)
}
