// SPDX-License-Identifier: GPL-2.0
/*
 * rsttrace: one event per TCP RST sent or received, with the socket state,
 * the packet that caused it and the kernel stack.
 *
 * Written once for all attach modes. The frontend (rsttrace/tracer.py)
 * compiles it with:
 *   MODE_KPROBE | MODE_FENTRY | MODE_RAW_TP   how arguments are read (ARG)
 *   HOOK_<NAME>=1                             which entry points to build
 *   <NAME>_SK / _SKB / _REASON                argument positions (-1: absent),
 *                                             checked against the kernel's BTF
 *   OFF_*                                     struct offsets from BTF
 *   SOCK_LINGER_BIT, USE_RINGBUF, FILTER_*,
 *   SUMMARY_ONLY (AGG_NETNS, AGG_LOCAL_PORT    see below
 *   with EPHEMERAL_LO/HI), OWNERS
 * so nothing here depends on the layout of the header tree bcc compiles with.
 */
#include <uapi/linux/ptrace.h>

#ifdef OFFSETS_FROM_HEADERS
/* Only on a kernel without BTF: the header tree must then match the kernel. */
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/net_namespace.h>
#include <linux/tcp.h>
#include <linux/skbuff.h>
#include <linux/netdevice.h>
#include <net/request_sock.h>
#endif

#include "rsttrace.h"

/* ---- argument access, the only part that differs between modes -------- */
#if defined(MODE_KPROBE)
static __always_inline u64 arg_n(struct pt_regs *ctx, int n)
{
	switch (n) {
	case 0: return PT_REGS_PARM1(ctx);
	case 1: return PT_REGS_PARM2(ctx);
	case 2: return PT_REGS_PARM3(ctx);
	case 3: return PT_REGS_PARM4(ctx);
	case 4: return PT_REGS_PARM5(ctx);
	}
	return 0;
}
#define ARG(n) ((n) < 0 ? 0 : arg_n(ctx, (n)))
#elif defined(MODE_FENTRY)
#define ARG(n) ((n) < 0 ? 0 : ctx[(n) < 0 ? 0 : (n)])
#elif defined(MODE_RAW_TP)
#define ARG(n) ((n) < 0 ? 0 : ctx->args[(n) < 0 ? 0 : (n)])
#else
#error "define one of MODE_KPROBE, MODE_FENTRY, MODE_RAW_TP"
#endif

/* ---- maps ----------------------------------------------------------- */
#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif
#ifdef SUMMARY_ONLY
/* Summary mode counts into one of two maps, the one agg_live[0] holds.
 * User space swaps them (Tracer.take_counts) and then reads and empties the
 * one it took out: a map-in-map update returns only after the programs
 * running at that moment are done (maybe_wait_bpf_programs() calls
 * synchronize_rcu(), kernel/bpf/syscall.c, 5.0 and later), so no count
 * lands in a map being read, and a map holds the keys of one interval
 * only, however long the run. */
BPF_HASH(agg_a, struct agg_key, u64, AGG_ENTRIES);
BPF_HASH(agg_b, struct agg_key, u64, AGG_ENTRIES);
BPF_ARRAY_OF_MAPS(agg_live, "agg_a", 1);
#endif
/* [COUNT_MATCHED] events that passed the filters,
 * [COUNT_LOST] of those, events the ring buffer had no room for;
 * stacks walked and remembered, see stack_key(). */
BPF_PERCPU_ARRAY(counts, u64, COUNT_SLOTS);
/* Set-valued filters (at most FILTER_MAX entries each, filters.py). */
#ifdef FILTER_PORTS
BPF_HASH(filter_ports, u16, u8, FILTER_MAX);
#endif
#ifdef FILTER_HOSTS
BPF_HASH(filter_hosts, struct addr16, u8, FILTER_MAX);
#endif
#ifdef FILTER_COMM
BPF_ARRAY(filter_comm, struct comm16, 1);
#endif
#ifdef FILTER_NETNS
BPF_HASH(filter_netns, u32, u8, FILTER_MAX);
#endif

#ifdef OWNERS
/* Who owns a socket, by its address: the process that last listened on,
 * connected or closed it (on_sock_set_state() records it; read_owner()
 * reads it). LRU: the sockets used least are forgotten first. */
struct owner {
	u32 pid;
	char comm[16];
};
BPF_TABLE("lru_hash", u64, struct owner, sock_owners, OWNER_ENTRIES);
/* The same for closed connections, by connection: the TIME_WAIT remnant
 * of a socket (inet_twsk_alloc(), which is also how an orphan waits in
 * FIN_WAIT2) is another object, with the same connection. */
struct conn_key {
	u8 local[16];
	u8 remote[16];
	u32 netns;
	u16 lport;
	u16 rport;
};
BPF_TABLE("lru_hash", struct conn_key, struct owner, conn_owners,
	  OWNER_ENTRIES);
#endif

#ifdef HOOK_TP_NET_DEV_QUEUE
/* The last RST the TCP hooks reported on this CPU, so that the packet hook
 * can tell the TCP stack's own RSTs from others when skb->sk does not
 * (tcp_v6_send_response() sends its reply without an owner). The TCP hook
 * fires before the packet is queued (tcp_v{4,6}_send_reset(); kprobes at
 * entry), on the same CPU, with softirqs off. */
struct last_rst {
	u8 saddr[16];
	u8 daddr[16];
	u16 sport;
	u16 dport;
	u32 seq;
};
BPF_PERCPU_ARRAY(last_tcp_rst, struct last_rst, 1);
#endif

/* 16-byte compare without memcmp (which would become a libcall). */
static __always_inline int same16(const u8 *a, const u8 *b)
{
	u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

#define READ(dst, src) bpf_probe_read_kernel(&(dst), sizeof(dst), (src))

/* Adds one to a slot of `counts`; returns the new value (this CPU's). */
static __always_inline u64 count(int slot)
{
	u64 *c = counts.lookup(&slot);
	if (!c)
		return 0;
	return ++(*c);
}

/*
 * ---- the kernel stack ---------------------------------------------------
 *
 * Stored in `stacks` under a 64-bit FNV-1a hash of its frames (the key the
 * event carries; 0: none). Not bcc's BPF_STACK_TRACE: bpf_get_stackid()
 * fails with -EEXIST whenever the stack's bucket already holds a different
 * stack (kernel/bpf/stackmap.c, without BPF_F_REUSE_STACKID; with it, ids
 * already handed out change meaning), so on a host with many distinct
 * stacks kernel paths were lost for good. An LRU map forgets the stacks
 * used least when it is full; user space reads each new stack within a
 * poll interval and keeps it.
 *
 * Which frames: those of the walk that lie on the stack the hook runs on,
 * i.e. up to where that stack was entered. In a softirq that is the IRQ
 * stack, entered from do_softirq_own_stack() or the interrupt entry: the
 * frames beyond belong to whatever task the CPU was interrupting, not to
 * the RST (what attribution uses is the own path up to the softirq
 * boundary, rsttrace/trace/stacks.py own_frames). In a system call, the
 * task's stack, as far as the window (see stack_key()) reaches.
 *
 * The walk (bpf_get_stack) is the dearest part of the program: on 6.18/
 * x86-64 ~0.55 us before the first frame (the unwinder crosses the
 * helper's and the JIT code's frames, and looks the JIT code up in the
 * module, ftrace and BPF symbol tables) and ~35 ns per frame after
 * (bench/RESULTS.md). So it is done once per path: each CPU remembers, per
 * hook, the return addresses of the last path it walked and which words
 * of the stack held them (found by reading the stack back after the
 * walk), and how deep in its stack the program's context was. The next
 * event on that hook, as deep in its stack, reads only those words: the
 * same return addresses in the same places is the same call chain, by
 * induction from the program's context: the frames below the first
 * return address are the tracing machinery's (the same code each time),
 * and each return address names the function and call site whose frame
 * size (fixed: ORC records it per address) places the next return
 * address. The depth tells apart paths that share those frames and go on
 * differently beyond them (the same softirq on the IRQ stack, where the
 * window ends after handle_softirqs, and in ksoftirqd, where the thread's
 * frames follow). One that differs walks again. tests/integration/
 * test_stack_memo.py holds each remembered stack to a real walk
 * (STACK_MEMO_CHECK).
 */
#define STACK_WINDOW_CHUNKS 16          /* read in chunks of 128 bytes */
#define STACK_WINDOW_WORDS (STACK_WINDOW_CHUNKS * 16)
#define STACK_WINDOW_BELOW 256          /* bytes below the context */
/* The window's place in its stack: a kernel stack is 16 KiB (THREAD_SIZE
 * on x86-64 and arm64 with 4 KiB pages), task stacks aligned to it, and
 * a CPU's IRQ stack always at the same address. */
#define STACK_DEPTH_MASK 0x3fffULL
#define HOOK_SLOTS 16                   /* > every HOOK_ID_* */

/* Where the return addresses of a walked path are: word slot[k] of the
 * stack window (see stack_key()) holds ip[k]. Filled from the back (the
 * last entry is the outermost frame found; unused entries have ip 0), so
 * that no index depends on how many were found: the verifier would follow
 * the scan below once per count (and give up, E2BIG). */
struct stack_places {
	u64 ip[STACK_DEPTH];
	u16 slot[STACK_DEPTH];
};

struct stack_walk {
	struct stack_ips s;             /* the walk, then the frames kept */
	u64 want[STACK_DEPTH];          /* the walk's ip[found...], in order */
	u64 win[STACK_WINDOW_WORDS];    /* the stack window */
	u32 found;                      /* frames found */
};

struct stack_memo {
	u64 key;                        /* 0: nothing remembered */
	u64 depth;                      /* where the window starts in its
					   stack (see stack_key()) */
	u64 here;                       /* the window's start, this event */
	struct stack_places at;
};

BPF_TABLE("lru_hash", u64, struct stack_ips, stacks, STACK_ENTRIES);
/* Per CPU and hook: a program can be interrupted by another hook's (a
 * softirq's RST during a process's), never by itself. */
BPF_PERCPU_ARRAY(stack_scratch, struct stack_walk, HOOK_SLOTS);
BPF_PERCPU_ARRAY(stack_memo, struct stack_memo, HOOK_SLOTS);
BPF_PERCPU_ARRAY(event_slot, struct rst_event, HOOK_SLOTS);
#ifdef STACK_MEMO_CHECK
BPF_ARRAY(memo_wrong, u64, 2);          /* remembered key, walked key */
#endif

/* The remembered key when every remembered return address is still in
 * its place in the window from `here`, else 0. */
static __always_inline u64 memo_check(const struct stack_memo *m, u64 here)
{
	if (!m->key || m->depth != (here & STACK_DEPTH_MASK))
		return 0;
#pragma unroll
	for (int k = 0; k < STACK_DEPTH; k++) {
		u64 w = 0;

		if (!m->at.ip[k])
			continue;
		if (bpf_probe_read_kernel(&w, sizeof(w),
					  (void *)(here + m->at.slot[k] * 8)) ||
		    w != m->at.ip[k])
			return 0;
	}
	return m->key;
}

/* Walk the stack and keep the frames whose return addresses are found,
 * in order, in the window from `here` (ip[0], the address the walk
 * started from, is not a return address and always kept); store them and
 * remember where they were. */
static __always_inline u64 stack_walk(void *ctx, u32 hook,
				      struct stack_memo *m, u64 here)
{
	struct stack_walk *w = stack_scratch.lookup(&hook);
	u64 h = 0xcbf29ce484222325ULL;
	u32 frames, found = 1;
	long n, failed = 0;

	m->key = 0;
	if (!w)
		return 0;
	count(COUNT_STACK_WALKS);
	n = bpf_get_stack(ctx, w->s.ip, sizeof(w->s.ip), 0);
	if (n <= 0)
		return 0;
	frames = n / 8;
#pragma unroll
	for (int i = 0; i < STACK_DEPTH; i++) {
		if (i >= frames)
			w->s.ip[i] = 0;   /* bpf_get_stack() leaves the rest as is */
		m->at.ip[i] = 0;
	}
#pragma unroll
	for (int i = 0; i < STACK_DEPTH - 1; i++)
		w->want[i] = w->s.ip[i + 1];
	w->want[STACK_DEPTH - 1] = 0;
	/* The window, up to where the stack ends (a read across the end of
	 * a vmapped stack faults, and bpf_probe_read_kernel() zeroes what it
	 * could not read) or STACK_WINDOW_CHUNKS; zeros past that. */
	for (int c = 0; c < STACK_WINDOW_CHUNKS; c++) {
		if (failed)
			__builtin_memset(&w->win[c * 16], 0, 128);
		else
			failed = bpf_probe_read_kernel(&w->win[c * 16], 128,
						       (void *)(here + c * 128));
	}
	/* The scan: no bound but the window's own (clang turns a bound
	 * from memory into the loop's exit test, which an older verifier
	 * cannot follow: 6.1 read past the window). */
	for (u32 j = 0; j < STACK_WINDOW_WORDS; j++) {
		if (!w->want[0])
			break;
		if (w->win[j] != w->want[0])
			continue;
#pragma unroll
		for (int k = 0; k < STACK_DEPTH - 1; k++) {
			m->at.ip[k] = m->at.ip[k + 1];
			m->at.slot[k] = m->at.slot[k + 1];
			w->want[k] = w->want[k + 1];
		}
		m->at.ip[STACK_DEPTH - 1] = w->win[j];
		m->at.slot[STACK_DEPTH - 1] = j;
		w->want[STACK_DEPTH - 1] = 0;
		found++;
	}
	/* through memory, where the verifier stops tracking it: with its
	 * exact value it would follow all that comes after once per value
	 * (and give up, E2BIG) */
	w->found = found;
	found = *(volatile u32 *)&w->found;
	/* Nothing found (a stack this cannot read): keep the whole walk and
	 * remember nothing. */
#pragma unroll
	for (int i = 0; i < STACK_DEPTH; i++) {
		if (found > 1 && i >= found)
			w->s.ip[i] = 0;
		h = (h ^ w->s.ip[i]) * 0x100000001b3ULL;
	}
	if (!h)
		h = 1;
	if (!stacks.lookup(&h))
		stacks.update(&h, &w->s);
	if (found > 1) {
		m->key = h;
		m->depth = here & STACK_DEPTH_MASK;
	}
	return h;
}

static __always_inline u64 stack_key(void *ctx, u32 hook)
{
	/* Where the window starts: a little below the program's context,
	 * which is on the kernel stack in every mode (raw tracepoint: the
	 * args array of bpf_trace_run<N>(); kprobe: the saved pt_regs;
	 * fentry: the trampoline's frame), with the first return addresses
	 * of the walk just below it. Not the program's own frame: since 6.13
	 * a tracing program with a large stack runs on a private per-CPU
	 * stack (x86 JIT, priv_stack). */
	struct stack_memo *m = stack_memo.lookup(&hook);
	u64 here, key;
#ifdef STACK_MEMO_CHECK
	u64 remembered;
#endif

	if (!m)
		return 0;
	/* (through memory: the verifier allows no arithmetic but + and -
	 * on the context pointer itself) */
	m->here = (u64)ctx - STACK_WINDOW_BELOW;
	here = *(volatile u64 *)&m->here;
	key = 0;
#ifndef NO_STACK_MEMO
	key = memo_check(m, here);
	if (key)
		count(COUNT_MEMO_HITS);
#endif
#ifdef STACK_MEMO_CHECK
	/* Tests: walk all the same and count the remembered stacks that were
	 * not the walk's. (One call of stack_walk(): each inlined copy would
	 * walk from its own address, a frame of its own.) */
	remembered = key;
	key = 0;
#endif
	if (!key)
		key = stack_walk(ctx, hook, m, here);
#ifdef STACK_MEMO_CHECK
	if (remembered && remembered != key) {
		int zero = 0, one = 1;

		count(COUNT_MEMO_WRONG);
		memo_wrong.update(&zero, &remembered);   /* the last ones, */
		memo_wrong.update(&one, &key);           /* for the test */
	}
#endif
	return key;
}

/* IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d) so that every
 * address is 16 bytes and one filter map serves both families. */
static __always_inline void put_v4(u8 *dst, u32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline int is_v4_mapped(const u8 *a)
{
	u64 lo;
	u32 mid;
	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return lo == 0 && mid == bpf_htonl(0x0000ffff);
}

/* The connection of any socket-like object (struct sock_common is the
 * head of full, request and timewait sockets alike): local and remote
 * address (IPv4 v4-mapped) and port, and the namespace's inode. Returns
 * the family on the wire (4, 6; 0: neither). */
static __always_inline u8 read_conn(const void *sk, u8 *local, u8 *remote,
				    u16 *lport, u16 *rport, u32 *netns)
{
	u16 family = 0, dport = 0, num = 0;
	void *net = NULL;

	READ(family, sk + OFF_SKC_FAMILY);
	READ(dport, sk + OFF_SKC_DPORT);
	READ(num, sk + OFF_SKC_NUM);
	READ(net, sk + OFF_SKC_NET);
	if (net)
		READ(*netns, net + OFF_NET_INUM);
	*lport = num;
	*rport = bpf_ntohs(dport);
	if (family == AF_INET) {
		u32 a = 0;
		READ(a, sk + OFF_SKC_RCV_SADDR);
		put_v4(local, a);
		READ(a, sk + OFF_SKC_DADDR);
		put_v4(remote, a);
		return 4;
	}
	if (family == AF_INET6) {
		bpf_probe_read_kernel(local, 16, sk + OFF_SKC_V6_RCV_SADDR);
		bpf_probe_read_kernel(remote, 16, sk + OFF_SKC_V6_DADDR);
		/* A dual-stack socket carrying IPv4 is IPv4 on the wire. */
		return is_v4_mapped(remote) ? 4 : 6;
	}
	return 0;
}

/* Socket side: fields every socket-like object has. */
static __always_inline void read_sock_common(struct rst_event *ev,
					     const void *sk, u8 *local,
					     u8 *remote, u16 *lport,
					     u16 *rport)
{
	u8 state = 0;

	READ(state, sk + OFF_SKC_STATE);
	ev->state = state;
	ev->family = read_conn(sk, local, remote, lport, rport, &ev->netns);
}

/* Full sockets only (not TIME_WAIT, not NEW_SYN_RECV request socks):
 * linger, queues, listener backlog, sequence numbers. */
static __always_inline void read_full_sock(struct rst_event *ev,
					   const void *sk, u16 *lport)
{
	unsigned long flags = 0, lingertime = 0;
	u32 a = 0, b = 0;
	u16 sport = 0;

	/* skc_num is 0 once the port is released (__inet_put_port() on
	 * TCP_CLOSE, before tcp_send_active_reset()); inet_sport stays. */
	READ(sport, sk + OFF_INET_SPORT);
	if (sport)
		*lport = bpf_ntohs(sport);

	READ(flags, sk + OFF_SK_FLAGS);
	if (flags & (1UL << SOCK_LINGER_BIT)) {
		ev->flags |= EV_LINGER;
		READ(lingertime, sk + OFF_SK_LINGERTIME);
		ev->lingertime = lingertime;
	}
	if (ev->state == TCPS_LISTEN) {
		READ(ev->backlog, sk + OFF_SK_ACK_BACKLOG);
		READ(ev->backlog_max, sk + OFF_SK_MAX_ACK_BACKLOG);
		ev->flags |= EV_LISTENER;
		return;
	}
	READ(a, sk + OFF_TP_RCV_NXT);
	READ(b, sk + OFF_TP_COPIED_SEQ);
	ev->rcv_unread = a - b;
	ev->rcv_nxt = a;
	READ(a, sk + OFF_TP_WRITE_SEQ);
	READ(b, sk + OFF_TP_SND_NXT);
	ev->snd_unsent = a - b;
	ev->snd_nxt = b;
	READ(a, sk + OFF_TP_SND_UNA);
	ev->snd_unacked = b - a;
	/* TCP_LINGER2 < 0 is stored as -1 (do_tcp_setsockopt()): __tcp_close()
	 * then aborts in FIN_WAIT2 in state CLOSE, as it does when
	 * tcp_check_oom() finds too many orphans; before 6.10 (no reason)
	 * only this field tells the two apart. */
	READ(ev->linger2, sk + OFF_TP_LINGER2);
	ev->flags |= EV_TCP_SOCK;
}

/* Packet side: the segment being answered (sent RST) or the RST itself
 * (received). Addresses come from the IP header at skb->network_header,
 * the TCP header from skb->transport_header; both are set by the time
 * tcp_v4_rcv()/tcp_v6_rcv() hand the segment on. */
static __always_inline int read_skb(struct rst_event *ev, const void *skb,
				    u8 *src, u8 *dst, u16 *sport,
				    u16 *dport, u32 *seq, u32 *ack_seq)
{
	unsigned char *head = NULL, *data = NULL;
	u16 th_off = 0, nh_off = 0;
	u32 len = 0;
	u8 ver = 0;
	struct tcp_hdr20 th = {};

	READ(head, skb + OFF_SKB_HEAD);
	READ(data, skb + OFF_SKB_DATA);
	READ(th_off, skb + OFF_SKB_TRANSPORT_HEADER);
	READ(nh_off, skb + OFF_SKB_NETWORK_HEADER);
	READ(len, skb + OFF_SKB_LEN);
	if (!head || nh_off == 0xffff)
		return 0;
	READ(ver, head + nh_off);
	/* transport_header is unset (~0) on packets built outside the TCP
	 * stack: then the TCP header follows the IP header. */
	if (th_off == 0xffff || th_off <= nh_off)
		th_off = nh_off + ((ver >> 4) == 4 ? (ver & 0x0f) * 4 : 40);
	if (bpf_probe_read_kernel(&th, sizeof(th), head + th_off))
		return 0;
	ver >>= 4;
	if (ver == 4) {
		u32 a = 0;
		READ(a, head + nh_off + 12);
		put_v4(src, a);
		READ(a, head + nh_off + 16);
		put_v4(dst, a);
		ev->family = 4;
	} else if (ver == 6) {
		bpf_probe_read_kernel(src, 16, head + nh_off + 8);
		bpf_probe_read_kernel(dst, 16, head + nh_off + 24);
		ev->family = 6;
	} else {
		return 0;
	}
	*sport = bpf_ntohs(th.source);
	*dport = bpf_ntohs(th.dest);
	*seq = bpf_ntohl(th.seq);
	*ack_seq = bpf_ntohl(th.ack_seq);
	ev->seg_flags = th.flags;
	/* payload = bytes from skb->data on, less what precedes the TCP
	 * header and the header itself (as tcp_v4_send_reset() computes
	 * skb->len - th->doff * 4 with skb->data at the TCP header). */
	{
		s64 pre = (s64)(head + th_off - data);
		s64 pay = (s64)len - pre - (s64)((th.doff_res >> 4) * 4);
		ev->seg_len = pay > 0 ? (u32)pay : 0;
	}
	ev->flags |= EV_PACKET;
	return 1;
}

#if defined(HOOK_TP_NET_DEV_QUEUE) || defined(HOOK_TP_KFREE_SKB)
/* The TCP flags of a packet (0: not TCP), from its IP header at
 * skb->network_header (no IPv6 extension headers). */
static __always_inline u8 tcp_flags_of(const void *skb)
{
	unsigned char *head = NULL;
	u16 nh_off = 0;
	u8 b0 = 0, proto = 0, tflags = 0;
	u32 l4 = 0;

	READ(head, skb + OFF_SKB_HEAD);
	READ(nh_off, skb + OFF_SKB_NETWORK_HEADER);
	if (!head || nh_off == 0xffff)
		return 0;
	READ(b0, head + nh_off);
	if ((b0 >> 4) == 4) {
		READ(proto, head + nh_off + 9);
		l4 = (b0 & 0x0f) * 4;
	} else if ((b0 >> 4) == 6) {
		READ(proto, head + nh_off + 6);
		l4 = 40;
	}
	if (proto != 6 /* IPPROTO_TCP */)
		return 0;
	READ(tflags, head + nh_off + l4 + 13);
	return tflags;
}
#endif

static __always_inline u32 skb_netns(const void *skb)
{
	void *dev = NULL, *net = NULL;
	u32 inum = 0;

	READ(dev, skb + OFF_SKB_DEV);
	if (!dev)
		return 0;
	READ(net, dev + OFF_DEV_NET);
	if (!net)
		return 0;
	READ(inum, net + OFF_NET_INUM);
	return inum;
}

static __always_inline int pass_filters(struct rst_event *ev)
{
#ifdef FILTER_FAMILY
	if (ev->family != FILTER_FAMILY)
		return 0;
#endif
#ifdef FILTER_NETNS
	if (!filter_netns.lookup(&ev->netns))
		return 0;
#endif
#ifdef FILTER_PID
	if (ev->pid != FILTER_PID)
		return 0;
#endif
#ifdef FILTER_PORTS
	if (!filter_ports.lookup(&ev->sport) && !filter_ports.lookup(&ev->dport))
		return 0;
#endif
#ifdef FILTER_HOSTS
	if (!filter_hosts.lookup((struct addr16 *)ev->saddr) &&
	    !filter_hosts.lookup((struct addr16 *)ev->daddr))
		return 0;
#endif
#ifdef FILTER_COMM
	{
		int zero = 0;
		struct comm16 *want = filter_comm.lookup(&zero);
		if (!want)
			return 0;
#pragma unroll
		for (int i = 0; i < 16; i++) {
			if (ev->comm[i] != want->c[i])
				return 0;
			if (!want->c[i])
				break;
		}
	}
#endif
#ifdef FILTER_PCAP
	/* A pcap filter expression: pcap_filter() is generated from it by
	 * rsttrace/trace/pcap_filter.py and put before this file. */
	if (!pcap_filter(ev))
		return 0;
#endif
	return 1;
}

/* The facts of an event that attribution needs beyond its hook, state,
 * reason, packet flags and stack (FACT_* in rsttrace.h): decided here
 * once, for the event stream and summary mode alike. */
static __always_inline u16 facts_of(const struct rst_event *ev)
{
	u16 f = 0;

	if (ev->flags & EV_PACKET) {
		f |= FACT_PACKET;
		if (ev->seg_len)
			f |= FACT_SEG_DATA;
	}
	if (!(ev->flags & EV_SEQ) || ev->seq == 0)
		f |= FACT_SEQ_ZERO;
	if ((ev->flags & EV_LINGER) && ev->lingertime == 0)
		f |= FACT_LINGER_ZERO;
	if ((ev->flags & EV_TCP_SOCK) && ev->rcv_unread)
		f |= FACT_UNREAD;
	if (ev->flags & EV_TCP_SOCK) {
		f |= FACT_TCP_SOCK;
		if (ev->linger2 < 0)
			f |= FACT_LINGER2_NEG;
	}
	if ((ev->flags & EV_LISTENER) && ev->backlog > ev->backlog_max)
		f |= FACT_QUEUE_FULL;
	/* A reply RST takes its seq from the ACK of the segment it answers.
	 * From SYN_SENT, a SYN-ACK acknowledging exactly snd_nxt is acceptable,
	 * so the kernel resets it only for its timestamp: the PAWS check of
	 * tcp_rcv_synsent_state_process() (PAWSActive; reason TCP_RFC7323_PAWS
	 * from 6.10 on, nothing before). */
	if (ev->kind == KIND_SENT && (ev->flags & EV_TCP_SOCK) &&
	    (ev->flags & EV_PACKET) && (ev->seg_flags & TCPF_ACK) &&
	    ev->seq == ev->snd_nxt)
		f |= FACT_ACK_NXT;
	return f;
}

#ifdef SUMMARY_ONLY
/* One more RST under `key` in the live map. Two CPUs may both miss a new
 * key: the second insert fails with EEXIST and adds to the first's. */
static __always_inline void agg_add(struct agg_key *key)
{
	int zero = 0;
	u64 one = 1, *n;
	void *live = agg_live.lookup(&zero);

	if (!live) {                 /* not set up yet (Tracer.start) */
		count(COUNT_LOST);
		return;
	}
	n = bpf_map_lookup_elem(live, key);
	if (!n && bpf_map_update_elem(live, key, &one, BPF_NOEXIST) == 0)
		return;
	if (!n)
		n = bpf_map_lookup_elem(live, key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		count(COUNT_LOST);   /* map full: counted, not silent */
}
#endif

#ifdef OWNERS
/* The socket's owner as recorded (EV_OWNER) and the inode of its file
 * (user space finds the holders of a socket not recorded by that inode in
 * /proc/PID/fd). A request sock (NEW_SYN_RECV) stands for its listener; a
 * timewait sock has no file, and its owner is found by its connection. */
static __always_inline void read_owner(struct rst_event *ev, const void *sk,
				       const u8 *local, const u8 *remote,
				       u16 lport, u16 rport)
{
	u64 key = (u64)sk;
	void *sock = NULL;
	unsigned long ino = 0;
	struct owner *o;

	if (ev->state == TCPS_TIME_WAIT) {
		struct conn_key c = {};
		__builtin_memcpy(c.local, local, 16);
		__builtin_memcpy(c.remote, remote, 16);
		c.netns = ev->netns;
		c.lport = lport;
		c.rport = rport;
		o = conn_owners.lookup(&c);
	} else {
		if (ev->state == TCPS_NEW_SYN_RECV)
			READ(key, sk + OFF_RSK_LISTENER);
		READ(sock, (const void *)key + OFF_SK_SOCKET);
		if (sock) {
			READ(ino, sock + OFF_SA_INO);   /* socket_alloc */
			ev->sock_ino = ino;
		}
		o = sock_owners.lookup(&key);
	}
	if (o) {
		ev->owner_pid = o->pid;
		__builtin_memcpy(ev->owner_comm, o->comm, 16);
		ev->flags |= EV_OWNER;
	}
}
#endif

/*
 * An event that passed the filters: its stack and facts, then out (or
 * counted, in summary mode). The event is copied out of the stack of
 * handle() first, into a per-CPU slot of its hook (a program does not nest
 * with itself on a CPU): the verifier then reaches the stack walk with one
 * state, whichever way handle() built the event, instead of following the
 * walk once per way (it would give up: E2BIG).
 */
static __always_inline int emit(void *ctx, u32 hook,
				const struct rst_event *built)
{
	struct rst_event *ev = event_slot.lookup(&hook);
	u64 nth;

	if (!ev)
		return 0;
	__builtin_memcpy(ev, built, sizeof(*ev));
	nth = count(COUNT_MATCHED);
	ev->stack_key = stack_key(ctx, hook);
	ev->facts = facts_of(ev);

#ifdef SUMMARY_ONLY
	/* Summary mode: count in the kernel by the facts attribution decides
	 * on, so a storm costs a map update per RST and no user-space work. */
	{
		struct agg_key key = {};

		key.kind = ev->kind;
		key.hook = ev->hook;
		key.state = (ev->flags & EV_SOCK) ? ev->state : 0;
		key.family = ev->family;
		key.reason = ev->reason;
		key.stack_key = ev->stack_key;
		key.seg_flags = (ev->flags & EV_PACKET) ? ev->seg_flags : 0;
		key.facts = ev->facts;
#ifdef AGG_NETNS
		key.netns = ev->netns;
#endif
#ifdef AGG_LOCAL_PORT
		/* this host's end: the source of an RST sent, the destination
		 * of one received; ephemeral ports folded to 0 (unbounded) */
		key.local_port = ev->kind == KIND_RECEIVED ? ev->dport
							   : ev->sport;
		if (key.local_port >= EPHEMERAL_LO &&
		    key.local_port <= EPHEMERAL_HI)
			key.local_port = 0;
#endif
		agg_add(&key);
	}
	return 0;
#endif

#ifdef USE_RINGBUF
	/* No wakeup per event: waking the reader costs more than the event
	 * (an irq_work, then a task wakeup; ~29 us per RST measured in a VM
	 * at 20k RSTs/s, issue 15). The reader looks every 100 ms whatever
	 * happens, and is woken every WAKE_EVERY events of a CPU, so that a
	 * storm cannot fill the buffer between two looks (tracer.py sizes
	 * WAKE_EVERY to a quarter of the buffer over all CPUs). */
	if (events.ringbuf_output(ev, sizeof(*ev), nth % WAKE_EVERY ?
				  BPF_RB_NO_WAKEUP : BPF_RB_FORCE_WAKEUP))
		count(COUNT_LOST);
#else
	if (events.perf_submit(ctx, ev, sizeof(*ev)))
		count(COUNT_LOST);
#endif
	return 0;
}

/*
 * The one handler behind every hook.
 *   kind:   KIND_SENT, KIND_RECEIVED or KIND_CHALLENGE_ACK
 *   sk:     the socket (may be NULL, a request sock or a timewait sock)
 *   skb:    the segment being answered or the RST received (may be NULL)
 *   reason: enum sk_rst_reason value, or -1 where the hook has none
 *   (the packet hook passes the RST being sent as skb)
 */
static __always_inline int handle(void *ctx, u8 kind, u8 hook,
				  const void *sk, const void *skb, s32 reason)
{
	/* The packet is the RST itself for a received RST and for the packet
	 * hook; otherwise it is the segment the RST answers. */
	int pkt_is_rst = kind == KIND_RECEIVED || hook == HOOK_ID_TP_NET_DEV_QUEUE;
	struct rst_event ev = {};
	u8 local[16] = {}, remote[16] = {}, psrc[16] = {}, pdst[16] = {};
	u16 lport = 0, rport = 0, psport = 0, pdport = 0;
	u32 pseq = 0, pack = 0;
	u64 id = bpf_get_current_pid_tgid();
	int have_pkt = 0;

	ev.ts_ns = bpf_ktime_get_ns();
	ev.pid = id >> 32;
	ev.tid = (u32)id;
	ev.kind = kind;
	ev.hook = hook;
	ev.reason = reason;
	ev.skaddr = (u64)sk;
	bpf_get_current_comm(&ev.comm, sizeof(ev.comm));

	if (sk) {
		read_sock_common(&ev, sk, local, remote, &lport, &rport);
		ev.flags |= EV_SOCK;
		if (ev.state != TCPS_TIME_WAIT && ev.state != TCPS_NEW_SYN_RECV)
			read_full_sock(&ev, sk, &lport);
	}
	if (skb) {
		have_pkt = read_skb(&ev, skb, psrc, pdst, &psport, &pdport,
				    &pseq, &pack);
		if (!sk)
			ev.netns = skb_netns(skb);
	}
	/* tcp_v4_send_reset() and tcp_v6_send_reset() return without sending
	 * anything when the segment is itself an RST ("Never send a reset in
	 * response to a reset", net/ipv4/tcp_ipv4.c and net/ipv6/tcp_ipv6.c,
	 * every version). tcp:tcp_send_reset fires after that check; a kprobe
	 * or fentry on entry fires before it, so drop those here. */
	if ((hook == HOOK_ID_TCP_V4_SEND_RESET ||
	     hook == HOOK_ID_TCP_V6_SEND_RESET) && have_pkt &&
	    (ev.seg_flags & TCPF_RST))
		return 0;

	/* Addresses, ports and sequence numbers in the RST's own direction. */
	if (pkt_is_rst) {
		if (have_pkt) {
			__builtin_memcpy(ev.saddr, psrc, 16);
			__builtin_memcpy(ev.daddr, pdst, 16);
			ev.sport = psport;
			ev.dport = pdport;
			ev.seq = pseq;
			ev.ack = pack;
			ev.flags |= EV_SEQ;
		} else {
			__builtin_memcpy(ev.saddr, remote, 16);
			__builtin_memcpy(ev.daddr, local, 16);
			ev.sport = rport;
			ev.dport = lport;
		}
	} else if (have_pkt && kind == KIND_SENT) {
		/* A reply RST (tcp_v4_send_reset): the packet swapped, as the
		 * kernel builds it. The socket may be a listener or absent,
		 * so the packet is the only reliable source here. */
		__builtin_memcpy(ev.saddr, pdst, 16);
		__builtin_memcpy(ev.daddr, psrc, 16);
		ev.sport = pdport;
		ev.dport = psport;
		if (ev.seg_flags & TCPF_ACK) {
			ev.seq = pack;
			ev.ack = 0;
		} else {
			ev.seq = 0;
			ev.ack = pseq + ev.seg_len +
				 !!(ev.seg_flags & TCPF_SYN) +
				 !!(ev.seg_flags & TCPF_FIN);
		}
		ev.flags |= EV_SEQ;
	} else {
		/* tcp_send_active_reset() or a challenge ACK: built from the
		 * socket, seq = snd_nxt (tcp_acceptable_seq), ack = rcv_nxt. */
		__builtin_memcpy(ev.saddr, local, 16);
		__builtin_memcpy(ev.daddr, remote, 16);
		ev.sport = lport;
		ev.dport = rport;
		if (ev.flags & EV_TCP_SOCK) {
			ev.seq = ev.snd_nxt;
			ev.ack = ev.rcv_nxt;
			ev.flags |= EV_SEQ;
		}
	}

#ifdef HOOK_TP_NET_DEV_QUEUE
	{
		int zero = 0;
		struct last_rst *last = last_tcp_rst.lookup(&zero);
		if (last && hook == HOOK_ID_TP_NET_DEV_QUEUE) {
			if (last->sport == ev.sport && last->dport == ev.dport &&
			    last->seq == ev.seq && same16(last->saddr, ev.saddr) &&
			    same16(last->daddr, ev.daddr))
				return 0;
		} else if (last && kind == KIND_SENT) {
			__builtin_memcpy(last->saddr, ev.saddr, 16);
			__builtin_memcpy(last->daddr, ev.daddr, 16);
			last->sport = ev.sport;
			last->dport = ev.dport;
			last->seq = ev.seq;
		}
	}
#endif
	if (!pass_filters(&ev))
		return 0;
#if defined(OWNERS) && !defined(SUMMARY_ONLY)
	if (sk)
		read_owner(&ev, sk, local, remote, lport, rport);
#endif
	return emit(ctx, hook, &ev);
}

/* ---- entry points: one per hook, built only when the hook exists ------ */
#if defined(MODE_RAW_TP)
#define ENTRY(name) int on_##name(struct bpf_raw_tracepoint_args *ctx)
#elif defined(MODE_FENTRY)
#define ENTRY(name) KFUNC_PROBE(name)
#else
#define ENTRY(name) int on_##name(struct pt_regs *ctx)
#endif

#define REASON(pos) ((pos) < 0 ? -1 : (s32)ARG(pos))

#ifdef HOOK_TCP_V4_SEND_RESET
/* static void tcp_v4_send_reset(const struct sock *sk, struct sk_buff *skb
 *                               [, enum sk_rst_reason reason])  (6.10+) */
ENTRY(tcp_v4_send_reset)
{
	return handle(ctx, KIND_SENT, HOOK_ID_TCP_V4_SEND_RESET,
		      (void *)ARG(TCP_V4_SEND_RESET_SK),
		      (void *)ARG(TCP_V4_SEND_RESET_SKB),
		      REASON(TCP_V4_SEND_RESET_REASON));
}
#endif

#ifdef HOOK_TCP_V6_SEND_RESET
ENTRY(tcp_v6_send_reset)
{
	return handle(ctx, KIND_SENT, HOOK_ID_TCP_V6_SEND_RESET,
		      (void *)ARG(TCP_V6_SEND_RESET_SK),
		      (void *)ARG(TCP_V6_SEND_RESET_SKB),
		      REASON(TCP_V6_SEND_RESET_REASON));
}
#endif

#ifdef HOOK_TCP_SEND_ACTIVE_RESET
/* void tcp_send_active_reset(struct sock *sk, gfp_t priority
 *                            [, enum sk_rst_reason reason])  (6.10+) */
ENTRY(tcp_send_active_reset)
{
	return handle(ctx, KIND_SENT, HOOK_ID_TCP_SEND_ACTIVE_RESET,
		      (void *)ARG(TCP_SEND_ACTIVE_RESET_SK), NULL,
		      REASON(TCP_SEND_ACTIVE_RESET_REASON));
}
#endif

#ifdef HOOK_TCP_RESET
/* void tcp_reset(struct sock *sk [, struct sk_buff *skb])  (skb: 5.11+) */
ENTRY(tcp_reset)
{
	return handle(ctx, KIND_RECEIVED, HOOK_ID_TCP_RESET,
		      (void *)ARG(TCP_RESET_SK), (void *)ARG(TCP_RESET_SKB), -1);
}
#endif

#ifdef HOOK_TCP_SEND_CHALLENGE_ACK
/* static void tcp_send_challenge_ack(struct sock *sk
 *                                    [, const struct sk_buff *skb])
 * (the skb argument went away in 6.0; 5.10 builds it as .constprop.0) */
ENTRY(tcp_send_challenge_ack)
{
	return handle(ctx, KIND_CHALLENGE_ACK, HOOK_ID_TCP_SEND_CHALLENGE_ACK,
		      (void *)ARG(TCP_SEND_CHALLENGE_ACK_SK),
		      (void *)ARG(TCP_SEND_CHALLENGE_ACK_SKB), -1);
}
#endif

#ifdef HOOK_TP_TCP_SEND_RESET
/* TP_PROTO(const struct sock *sk, const struct sk_buff *skb
 *          [, const enum sk_rst_reason reason])  (reason: 6.10+).
 * skb is NULL when called from tcp_send_active_reset(); sk is NULL for an
 * RST with no socket: only since 6.10 (on 5.10 and 6.1 it does not fire
 * for a SYN to a closed port, measured). */
ENTRY(tp_tcp_send_reset)
{
	return handle(ctx, KIND_SENT, HOOK_ID_TP_TCP_SEND_RESET,
		      (void *)ARG(TP_TCP_SEND_RESET_SK),
		      (void *)ARG(TP_TCP_SEND_RESET_SKB),
		      REASON(TP_TCP_SEND_RESET_REASON));
}
#endif

#ifdef HOOK_TP_TCP_RECEIVE_RESET
/* TP_PROTO(struct sock *sk), fired from tcp_reset(). */
ENTRY(tp_tcp_receive_reset)
{
	return handle(ctx, KIND_RECEIVED, HOOK_ID_TP_TCP_RECEIVE_RESET,
		      (void *)ARG(TP_TCP_RECEIVE_RESET_SK), NULL, -1);
}
#endif

#ifdef HOOK_NF_SEND_RESET
/* void nf_send_reset(struct net *net, struct sock *sk, struct sk_buff *oldskb,
 *                    int hook)  (sk since 5.10; net/ipv4/netfilter/
 * nf_reject_ipv4.c): the RST answers oldskb, as tcp_v4_send_reset does. */
ENTRY(nf_send_reset)
{
	return handle(ctx, KIND_SENT, HOOK_ID_NF_SEND_RESET,
		      (void *)ARG(NF_SEND_RESET_SK),
		      (void *)ARG(NF_SEND_RESET_SKB), -1);
}
#endif

#ifdef HOOK_NF_SEND_RESET6
ENTRY(nf_send_reset6)
{
	return handle(ctx, KIND_SENT, HOOK_ID_NF_SEND_RESET6,
		      (void *)ARG(NF_SEND_RESET6_SK),
		      (void *)ARG(NF_SEND_RESET6_SKB), -1);
}
#endif

#ifdef HOOK_TP_NET_DEV_QUEUE
/*
 * The packet-level catch-all (opt-in: it runs for every packet queued to a
 * device). TP_PROTO(struct sk_buff *skb), from __dev_queue_xmit(). It
 * reports TCP RSTs that the TCP stack did not send: those have no socket
 * (skb->sk NULL; the TCP stack sends its replies through a per-CPU control
 * socket and its aborts through the socket itself) and were made on this
 * host (skb->skb_iif 0; a forwarded packet carries its input interface).
 * That is netfilter's REJECT (nf_send_reset) and anything else outside
 * the TCP stack. Always a raw tracepoint, whatever the mode.
 */
int on_tp_net_dev_queue(struct bpf_raw_tracepoint_args *ctx)
{
	const void *skb = (const void *)ctx->args[0];
	void *owner = NULL;
	int iif = 0;

	READ(owner, skb + OFF_SKB_SK);
	if (owner)
		return 0;
	READ(iif, skb + OFF_SKB_IIF);
	if (iif)
		return 0;
	if (!(tcp_flags_of(skb) & TCPF_RST))
		return 0;
	return handle(ctx, KIND_SENT, HOOK_ID_TP_NET_DEV_QUEUE, NULL, skb, -1);
}
#endif

#ifdef HOOK_INET_TWSK_DESCHEDULE_PUT
/*
 * void inet_twsk_deschedule_put(struct inet_timewait_sock *tw): a TIME_WAIT
 * socket dropped before its time. Its one caller that does so because an
 * RST arrived is tcp_timewait_state_process() (`kill:`; net/ipv4/
 * tcp_minisocks.c, 5.10 to 7.x): an in-window RST in the FIN_WAIT2
 * substate, or one with exactly the expected sequence number in TIME_WAIT
 * proper unless net.ipv4.tcp_rfc1337=1 (then it is ignored and nothing is
 * called). No tcp_reset(), so no other hook sees it. The other callers
 * reuse the port for a new connection, follow the kernel's own RST
 * (tcp_v4_rcv, TCP_TW_RST), kill it from outside (tcp_abort) or purge a
 * namespace: only calls whose caller is tcp_timewait_state_process
 * (INET_TWSK_DESCHEDULE_PUT_CALLER_START..END, its address range in
 * kallsyms) are reported, as an RST received by the TIME_WAIT socket.
 */
ENTRY(inet_twsk_deschedule_put)
{
	u64 ips[6] = {};
	long n = bpf_get_stack(ctx, ips, sizeof(ips), 0);
	int hit = 0;

#pragma unroll
	for (int i = 0; i < 6; i++)
		if (i * 8 < n && ips[i] >= INET_TWSK_DESCHEDULE_PUT_CALLER_START &&
		    ips[i] < INET_TWSK_DESCHEDULE_PUT_CALLER_END)
			hit = 1;
	if (!hit)
		return 0;
	return handle(ctx, KIND_RECEIVED, HOOK_ID_INET_TWSK_DESCHEDULE_PUT,
		      (void *)ARG(INET_TWSK_DESCHEDULE_PUT_SK), NULL, -1);
}
#endif

#ifdef HOOK_TP_KFREE_SKB
/*
 * The same in tracepoint mode, where no tracepoint fires in
 * tcp_timewait_state_process(): the RST is then dropped by tcp_v4_rcv()/
 * tcp_v6_rcv() (sk_skb_reason_drop(sk, skb, ...)), which names the
 * TIME_WAIT socket as rx_sk. TP_PROTO(struct sk_buff *skb, void *location,
 * enum skb_drop_reason reason, struct sock *rx_sk) (rx_sk: 6.11+). A
 * socket the RST killed has been unhashed by inet_twsk_kill()
 * (skc_node.pprev NULL; timewait sockets are SLAB_TYPESAFE_BY_RCU, so the
 * memory is still a timewait socket within this RCU section); one that
 * survived (tcp_rfc1337, a sequence number not exactly expected) is still
 * hashed. Opt-in (--packets): it runs for every packet dropped. Always a
 * raw tracepoint.
 */
int on_tp_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	const void *skb = (const void *)ctx->args[0];
	const void *sk = (const void *)ctx->args[TP_KFREE_SKB_SK];
	void *pprev = (void *)1;
	u8 state = 0;

	if (!sk)
		return 0;
	READ(state, sk + OFF_SKC_STATE);
	if (state != TCPS_TIME_WAIT || !(tcp_flags_of(skb) & TCPF_RST))
		return 0;
	READ(pprev, sk + OFF_SKC_NODE_PPREV);
	if (pprev)
		return 0;
	return handle(ctx, KIND_RECEIVED, HOOK_ID_TP_KFREE_SKB, sk, skb, -1);
}
#endif

#ifdef OWNERS
/*
 * sock:inet_sock_set_state, TP_PROTO(const struct sock *sk,
 * const int oldstate, const int newstate) (4.16+), fired by every TCP
 * state change (inet_sk_state_store()); always a raw tracepoint, whatever
 * the mode. These states are entered only by a system call, in the process
 * that makes it, so the current task is the socket's owner:
 *   LISTEN     inet_csk_listen_start(), from listen()
 *   SYN_SENT   tcp_v4_connect() / tcp_v6_connect(), from connect()
 *   FIN_WAIT1, LAST_ACK  tcp_close_state(), from close() and shutdown()
 * (ESTABLISHED, FIN_WAIT2, CLOSE... are entered in softirq as well, where
 * the current task is anyone). A closing connection is also recorded by
 * its addresses, for its TIME_WAIT remnant. A socket made by accept() is
 * born in softirq, as a copy of its listener: inet_csk_clone_lock() moves
 * it from LISTEN to SYN_RECV. An owner recorded for an earlier socket at
 * the same address is dropped then; the new one is found by its file.
 */
int on_sock_set_state(struct bpf_raw_tracepoint_args *ctx)
{
	u64 sk = ctx->args[0];
	int oldstate = (int)ctx->args[1], newstate = (int)ctx->args[2];
	struct owner o = {};
	struct conn_key c = {};

	if (oldstate == TCPS_LISTEN && newstate == TCPS_SYN_RECV) {
		sock_owners.delete(&sk);
		return 0;
	}
	if (newstate != TCPS_LISTEN && newstate != TCPS_SYN_SENT &&
	    newstate != TCPS_FIN_WAIT1 && newstate != TCPS_LAST_ACK)
		return 0;
	o.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&o.comm, sizeof(o.comm));
	sock_owners.update(&sk, &o);
	if (newstate == TCPS_FIN_WAIT1 || newstate == TCPS_LAST_ACK) {
		read_conn((const void *)sk, c.local, c.remote, &c.lport,
			  &c.rport, &c.netns);
		conn_owners.update(&c, &o);
	}
	return 0;
}
#endif
