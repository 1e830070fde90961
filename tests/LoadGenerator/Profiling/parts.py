#!/usr/bin/env python3
"""Aggregate a CPU profile of the node by part of a send.

Input: `perf script` text (perf record -g, node started with DOTNET_PerfMapEnabled=1) or a speedscope JSON
(dotnet-trace convert --format speedscope; that one samples managed threads' wall time, so waiting shows as
"idle" and GC threads are missing: perf is the CPU figure). A sample is charged to one part:
  1. by thread: the GC's own threads to GC, the tiered-compilation thread to JIT;
  2. by its leaf: native frames (kernel, libc, runtime) below the first managed frame that spin, yield or wait
     (sched_yield, futex, LowLevelLifoSemaphore, epoll) are thread-pool spinning and waking;
  3. else the frame nearest the leaf that names a specific part (JSON, JWT, journal, sharding, our actor ...), so
     BCL code (Dictionary, async plumbing) is charged to the part that called it;
  4. else a generic part (Akka dispatch, other BCL, kernel).
Usage: parts.py perf.txt [THREAD_NAME_REGEX] [-v]
"""
import json, re, sys, collections

# (part, regex on the frame) in order of priority when a frame matches several; checked leaf -> root.
PARTS = [
    ("idle: waiting (not CPU)", r"Monitor\.Wait|LowLevelLifoSemaphore\.WaitForSignal|WaitHandle\.Wait|ManualResetEventSlim\.Wait|Thread\.Sleep|Interop\+Sys\.Read\(|epoll_wait|WaitForSingleObject|SemaphoreSlim\.Wait\(|PollGC"),
    ("thread pool: spinning / dispatch", r"LowLevelSpinWaiter|LowLevelLifoSemaphore|PortableThreadPool|ThreadPoolWorkQueue\.Dispatch|ThreadPoolWorkQueue\.Enqueue|WorkerThread|SpinWait|ThreadPool\.RequestWorker|Thread::|ThreadNative|pthread_cond|futex|sched_yield|__sched|do_sched_yield"),
    ("GC and allocation", r"WKS::|SVR::|gc_heap|GCHeap|GCToEE|Alloc(Small|Large)?Obj|JIT_New|RhpNew|memset|memmove_.*gc|GCInterface|Mark(Phase|Object)|plan_phase|relocate|mark_object|gc_thread|background_gc|\bGC\b|WriteBarrier|JIT_ByRefWriteBarrier|JIT_WriteBarrier|JIT_CheckedWriteBarrier"),
    ("JIT / type loading", r"jit|JIT_Patchpoint|clrjit|MethodDesc::|TieredCompilation|CallCountingManager|ReJit|DynamicMethod|ILGenerator|PreStub|ThePreStub|ClassLoader|TypeHandle::"),
    ("logging and metrics", r"Microsoft\.Extensions\.Logging|System\.Diagnostics\.Metrics|OpenTelemetry|Prometheus|Akka\.Event\.|HttpMetrics|MessagingMetrics|DiagnosticListener|System\.Diagnostics\.Activity|HostingApplicationDiagnostics|Metrics"),
    ("journal: Akka.Persistence.Sql / linq2db / Npgsql", r"Akka\.Persistence\.Sql|LinqToDB|Npgsql|JournalFence|Akka\.Streams|Akka\.Persistence\.Journal|AsyncWriteJournal"),
    ("serialization (protobuf)", r"Google\.Protobuf|Messaging\.Messages\.Serialization|Akka\.Serialization|MessagingSerializer|Akka\.Remote\.Serialization"),
    ("persistence: actor side (Eventsourced, PersistAsync)", r"Akka\.Persistence\."),
    ("remoting", r"Akka\.Remote\.|DotNetty"),
    ("sharding (region, shard)", r"Akka\.Cluster\.Sharding|MailboxMessageExtractor|MessageExtractor|HashCodeMessageExtractor"),
    ("the Ask (temp actor, timeout, cancellation)", r"Akka\.Actor\.Futures|FutureActorRef|PromiseActorRef|TempContainer|AskTimeout|Akka\.Util\.Internal\.TaskEx|CancellationTokenSource|CancellationTokenRegistration|TaskCompletionSource|HashedWheelTimerScheduler|Akka\.Actor\.Scheduler|AskEx"),
    ("the mailbox actor and state (ours)", r"Messaging\.Actors"),
    ("JWT", r"Microsoft\.IdentityModel|System\.IdentityModel|JwtBearer|CachingTokenHandler|MessagingAuth|Microsoft\.AspNetCore\.Authentication|System\.Security\.Claims|Microsoft\.AspNetCore\.Authorization"),
    ("rate limiter", r"System\.Threading\.RateLimiting|Microsoft\.AspNetCore\.RateLimiting|SendRateLimiting"),
    ("JSON (System.Text.Json)", r"System\.Text\.Json|MessagingJsonContext"),
    ("endpoint (ours: validation, DTOs, problems)", r"Messaging\.Http"),
    ("routing, endpoint glue, middleware", r"Microsoft\.AspNetCore\.Routing|RequestDelegateFactory|Microsoft\.AspNetCore\.Builder|Microsoft\.AspNetCore\.Http\.HttpResults|Microsoft\.AspNetCore\.Http\.(Generated|RequestDelegate|EndpointMetadata|Results|TypedResults)|Microsoft\.Extensions\.DependencyInjection|ServiceProvider|Microsoft\.AspNetCore\.Diagnostics|Microsoft\.AspNetCore\.HostFiltering|Microsoft\.AspNetCore\.Hosting|ExceptionHandler|Microsoft\.AspNetCore\.StaticFiles"),
    ("Kestrel, HTTP parsing, sockets", r"Microsoft\.AspNetCore\.Server\.Kestrel|System\.Net\.Sockets|System\.IO\.Pipelines|Microsoft\.AspNetCore\.Http\.|Microsoft\.AspNetCore\.WebUtilities|Microsoft\.Net\.Http\.Headers|sock_|tcp_|ip_|__sys_|sys_sendto|sys_recvfrom|inet_|skb|net_rx|__netif|loopback|__dev_queue|epoll|send|recv"),
    ("Akka dispatch and actor cells", r"Akka\.Dispatch|Akka\.Actor\.|Akka\.Cluster\.|Akka\.Util"),
    ("async machinery and other BCL", r"System\.Runtime\.CompilerServices|System\.Threading\.Tasks|System\.Threading\.ExecutionContext|System\."),
    ("kernel and native (other)", r"\[kernel|k\]|entry_SYSCALL|do_syscall|syscall|libc|libcoreclr|libclrjit|\.so"),
]
COMPILED = [(p, re.compile(r, re.I if p.startswith("kernel") else 0)) for p, r in PARTS]


SPIN = re.compile(r"sched_yield|LowLevelSpinWaiter|LowLevelLifoSemaphore|SpinWait|futex|pthread_cond|ThreadPool\.RequestWorker|PortableThreadPool|Thread::|do_epoll_wait|SocketAsyncEngine::EventLoop|epoll_wait")
GENERIC = {"thread pool: spinning / dispatch", "Akka dispatch and actor cells", "async machinery and other BCL",
           "kernel and native (other)", "idle: waiting (not CPU)", "GC and allocation", "JIT / type loading"}
NATIVE = re.compile(r"\[unknown\]|kallsyms|libc\.so|libcoreclr|ld-linux|vdso|libclrjit|libSystem|ReportStubBlock|stub ")


def classify(stack, comm=""):
    """stack: root -> leaf list of frame names."""
    if re.search(r"Server GC|\.NET BGC|\.NET GC", comm or ""):
        return "GC and allocation"
    if re.search(r"Tiered|JIT", comm or ""):
        return "JIT / type loading"
    # the leaf's own native run (kernel, libc, runtime) up to the first managed frame: spinning / waking?
    for f in reversed(stack):
        if SPIN.search(f):
            return "thread pool: spinning / dispatch"
        if not NATIVE.search(f):
            break
    for f in reversed(stack):
        for part, rx in COMPILED:
            if part in GENERIC:
                continue
            if rx.search(f):
                return part
    for f in reversed(stack):
        for part, rx in COMPILED:
            if part in GENERIC and rx.search(f):
                return part
    return "unresolved"


def perf_stacks(path):
    stack, comm = [], None
    with open(path, errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if stack:
                    yield comm, list(reversed(stack)), 1.0
                stack = []
                continue
            if not line.startswith((" ", "\t")):
                m = re.match(r"^(.*?)\s+\d+\s+[\d.]+:", line)
                comm = m.group(1) if m else line
                continue
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym = parts[1]
                sym = re.sub(r"\+0x[0-9a-f]+ ", " ", sym)
                stack.append(sym)
    if stack:
        yield comm, list(reversed(stack)), 1.0


def speedscope_stacks(path):
    d = json.load(open(path))
    frames = [f["name"] for f in d["shared"]["frames"]]
    for prof in d["profiles"]:
        open_, last = [], None
        for ev in prof["events"]:
            if last is not None and open_ and ev["at"] > last:
                yield prof["name"], [frames[i] for i in open_], ev["at"] - last
            last = ev["at"]
            if ev["type"] == "O":
                open_.append(ev["frame"])
            else:
                # close the matching frame (speedscope closes innermost first)
                if open_ and open_[-1] == ev["frame"]:
                    open_.pop()
                elif ev["frame"] in open_:
                    open_.remove(ev["frame"])


def main():
    path = sys.argv[1]
    only_comm = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else None
    src = speedscope_stacks(path) if path.endswith(".json") else perf_stacks(path)
    by_part = collections.Counter()
    inclusive = collections.Counter()
    native_leaf = collections.Counter()
    leaf_by_part = collections.defaultdict(collections.Counter)
    total = 0.0
    markers = {
        "MailboxActor (inclusive)": r"MailboxActor",
        "Npgsql (inclusive)": r"Npgsql",
        "LinqToDB (inclusive)": r"LinqToDB",
        "System.Text.Json (inclusive)": r"System\.Text\.Json",
    }
    mrx = {k: re.compile(v) for k, v in markers.items()}
    for comm, stack, w in src:
        if only_comm and comm and not re.search(only_comm, comm):
            continue
        part = classify(stack, comm)
        by_part[part] += w
        leaf_by_part[part][stack[-1][:110]] += w
        native_leaf[part] += w if NATIVE.search(stack[-1]) else 0
        total += w
        joined = "\n".join(stack)
        for k, rx in mrx.items():
            if rx.search(joined):
                inclusive[k] += w
    busy = total - by_part["idle: waiting (not CPU)"]
    print(f"samples/weight total {total:.0f}, not idle {busy:.0f}")
    print(f"| part | share of the node's CPU | of which in native code (kernel, runtime) |\n| --- | ---: | ---: |")
    for part, w in by_part.most_common():
        if part.startswith("idle"):
            continue
        print(f"| {part} | {100 * w / busy:.1f} % | {100 * native_leaf[part] / busy:.1f} % |")
    print()
    for k in markers:
        print(f"{k}: {100 * inclusive[k] / busy:.1f} %")
    if "-v" in sys.argv:
        for part, c in sorted(leaf_by_part.items(), key=lambda kv: -by_part[kv[0]]):
            print(f"\n## {part} {100 * by_part[part] / max(busy, 1):.1f} %")
            for leaf, w in c.most_common(12):
                print(f"   {100 * w / max(busy, 1):5.2f} %  {leaf}")


if __name__ == "__main__":
    main()
