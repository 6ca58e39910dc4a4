/* SPDX-License-Identifier: GPL-2.0 */
/* The event rsttrace's BPF program emits, and the constants it shares with
 * the frontend (rsttrace/abi.py mirrors every one; tests/unit/test_abi.py
 * holds the two together). */
#ifndef RSTTRACE_H
#define RSTTRACE_H

#define AF_INET 2
#define AF_INET6 10

/* TCP states (include/net/tcp_states.h, stable ABI via inet_diag) */
#define TCPS_ESTABLISHED 1
#define TCPS_SYN_SENT 2
#define TCPS_SYN_RECV 3
#define TCPS_FIN_WAIT1 4
#define TCPS_TIME_WAIT 6
#define TCPS_LAST_ACK 9
#define TCPS_LISTEN 10
#define TCPS_NEW_SYN_RECV 12

/* TCP header flag bits (byte 13 of the header) */
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10
#define TCPF_URG 0x20
#define TCPF_ECE 0x40
#define TCPF_CWR 0x80

#define KIND_SENT 1
#define KIND_RECEIVED 2
#define KIND_CHALLENGE_ACK 3

#define HOOK_ID_TCP_V4_SEND_RESET 1
#define HOOK_ID_TCP_V6_SEND_RESET 2
#define HOOK_ID_TCP_SEND_ACTIVE_RESET 3
#define HOOK_ID_TCP_RESET 4
#define HOOK_ID_TCP_SEND_CHALLENGE_ACK 5
#define HOOK_ID_TP_TCP_SEND_RESET 6
#define HOOK_ID_TP_TCP_RECEIVE_RESET 7
#define HOOK_ID_NF_SEND_RESET 8
#define HOOK_ID_NF_SEND_RESET6 9
#define HOOK_ID_TP_NET_DEV_QUEUE 10
#define HOOK_ID_INET_TWSK_DESCHEDULE_PUT 11
#define HOOK_ID_TP_KFREE_SKB 12

/* ev.flags */
#define EV_SOCK 0x01      /* a socket was passed */
#define EV_TCP_SOCK 0x02  /* full TCP socket: queue and seq fields valid */
#define EV_LISTENER 0x04  /* listener: backlog fields valid */
#define EV_LINGER 0x08    /* SOCK_LINGER set: lingertime valid */
#define EV_PACKET 0x10    /* packet parsed: seg_* fields valid */
#define EV_SEQ 0x20       /* seq/ack valid */
#define EV_OWNER 0x40     /* owner_pid/owner_comm: the socket's recorded
                             owner (its listener's, for a request sock) */

#define FILTER_MAX 256

#define COUNT_MATCHED 0
#define COUNT_LOST 1
#define COUNT_STACK_WALKS 2   /* stacks walked (bpf_get_stack()) */
#define COUNT_MEMO_HITS 3     /* stacks remembered instead */
#define COUNT_MEMO_WRONG 4    /* tests (STACK_MEMO_CHECK): remembered stacks that
                                 a walk found different */
#define COUNT_SLOTS 5

/* ev.facts and agg_key.facts: what attribution decides on beyond hook,
 * state, reason, packet flags and stack (rsttrace/facts.py reads them).
 * Computed once, by facts_of(). */
#define FACT_PACKET 0x01      /* a packet was parsed: seg_flags valid */
#define FACT_SEG_DATA 0x02    /* it carried data */
#define FACT_SEQ_ZERO 0x04    /* the RST's seq is 0 or unknown */
#define FACT_LINGER_ZERO 0x08 /* SO_LINGER on with time 0 */
#define FACT_UNREAD 0x10      /* unread bytes in the receive queue */
#define FACT_QUEUE_FULL 0x20  /* listener backlog above its limit */
#define FACT_LINGER2_NEG 0x40 /* TCP_LINGER2 < 0 */
#define FACT_TCP_SOCK 0x80    /* full TCP socket: LINGER2_NEG known */
#define FACT_ACK_NXT 0x100    /* a reply RST from a full socket to a segment
			       * whose ACK is the socket's snd_nxt */

/* Summary mode's key: the facts and a family, no addresses. The exporter
 * may ask for two more labels (rsttrace/output/metric_labels.py); both are
 * 0 unless compiled in (AGG_NETNS, AGG_LOCAL_PORT). */
struct agg_key {
	u64 stack_key;
	s32 reason;
	u8 kind;
	u8 hook;
	u8 state;         /* 0: no socket */
	u8 family;
	u8 seg_flags;
	u8 pad0;
	u16 facts;        /* FACT_* */
	u16 local_port;   /* AGG_LOCAL_PORT: this host's port, 0: in the
			   * ephemeral range (EPHEMERAL_LO..HI) or none */
	u16 pad1;
	u32 netns;        /* AGG_NETNS: network namespace inode */
	u8 pad[4];
};

/* Frames kept per kernel stack (innermost first; the rest are zero). */
#define STACK_DEPTH 32

struct stack_ips {
	u64 ip[STACK_DEPTH];
};

struct addr16 {
	u8 a[16];
};

struct comm16 {
	char c[16];
};

/* The first 20 bytes of a TCP header, without bitfields. */
struct tcp_hdr20 {
	u16 source;
	u16 dest;
	u32 seq;
	u32 ack_seq;
	u8 doff_res;
	u8 flags;
	u16 window;
	u16 check;
	u16 urg_ptr;
};

struct rst_event {
	u64 ts_ns;        /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	u64 skaddr;
	u64 lingertime;   /* jiffies */
	u64 stack_key;    /* key of the kernel stack in `stacks`, 0: none */
	u32 pid;          /* tgid of the task running when the hook fired */
	u32 tid;
	u32 netns;        /* inode of the network namespace */
	s32 reason;       /* enum sk_rst_reason, -1: none */
	u32 seq;
	u32 ack;
	u32 rcv_nxt;
	u32 snd_nxt;
	u32 rcv_unread;   /* rcv_nxt - copied_seq */
	u32 snd_unsent;   /* write_seq - snd_nxt */
	u32 snd_unacked;  /* snd_nxt - snd_una */
	u32 backlog;      /* sk_ack_backlog */
	u32 backlog_max;  /* sk_max_ack_backlog */
	u32 seg_len;      /* payload of the packet handled */
	s32 linger2;      /* tcp_sock.linger2 (TCP_LINGER2): jiffies, -1 */
	u16 sport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
	u8 family;        /* 4 or 6, 0: unknown */
	u8 kind;
	u8 hook;
	u8 state;         /* TCP state, 0: no socket */
	u8 flags;         /* EV_* */
	u8 seg_flags;     /* TCP flags of the packet handled */
	u16 facts;        /* FACT_* */
	char comm[16];
	u32 owner_pid;    /* the socket's owner (EV_OWNER), see sock_owners */
	u32 sock_ino;     /* inode of the socket's file, 0: none (orphaned) */
	char owner_comm[16];
};

#endif
