/* SPDX-License-Identifier: GPL-2.0 */
/* The IP + TCP header of an RST (or challenge ACK) as the kernel put it on
 * the wire, rebuilt from its event: what a pcap filter expression
 * (`rsttrace trace 'tcp port 443'`, rsttrace/trace/pcap_filter.py) runs
 * on in the kernel. rsttrace/output/wire_header.py builds the same bytes
 * for `trace -w`; tests/unit/test_wire_header.py compiles this file and
 * holds the two together byte for byte. Included only with a filter
 * expression, by the code pcap_filter.py generates.
 *
 * Fields the event does not carry take fixed values: TTL / hop limit 64,
 * IP id 0 with DF, window 0, no TCP options, no payload. */
#ifndef RSTTRACE_PCAP_HEADER_H
#define RSTTRACE_PCAP_HEADER_H

#define PCAP_BUF 64      /* a power of two: indirect loads are masked to it */
#define PCAP_TTL 64

/* The TCP flags of the segment, as the kernel sent them. */
static __always_inline u8 wire_flags(const struct rst_event *ev)
{
	int pkt = ev->flags & EV_PACKET;

	if (ev->kind == KIND_CHALLENGE_ACK)      /* tcp_send_challenge_ack() */
		return TCPF_ACK;
	/* the packet is the RST itself (read_skb()); no packet: RST alone */
	if (ev->kind == KIND_RECEIVED || ev->hook == HOOK_ID_TP_NET_DEV_QUEUE)
		return pkt ? ev->seg_flags : TCPF_RST;
	/* tcp_v4_send_reset() / tcp_v6_send_reset() / nf_send_reset(): to a
	 * segment with ACK, seq = its ack and no ACK; else RST|ACK acking it
	 * (every version). tcp_send_active_reset(): TCPHDR_ACK | TCPHDR_RST. */
	if (pkt && (ev->seg_flags & TCPF_ACK))
		return TCPF_RST;
	return TCPF_RST | TCPF_ACK;
}

static __always_inline void put16(u8 *p, int off, u32 v)
{
	p[off] = v >> 8;
	p[off + 1] = v;
}

static __always_inline void put32(u8 *p, int off, u32 v)
{
	put16(p, off, v >> 16);
	put16(p, off + 2, v);
}

/* One's complement sum of n bytes (n even, a constant) of p at off. */
static __always_inline u32 sum16(const u8 *p, int off, int n)
{
	u32 s = 0;
#pragma unroll
	for (int i = 0; i < n; i += 2)
		s += (u32)p[off + i] << 8 | p[off + i + 1];
	return s;
}

static __always_inline u32 fold(u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

/* Writes the header to p (PCAP_BUF bytes); returns its length, 0 when the
 * event has no family (then no header, and no filter can match). */
static __always_inline u32 pcap_header(const struct rst_event *ev, u8 *p)
{
	int ip, i;

#pragma unroll
	for (i = 0; i < PCAP_BUF; i++)
		p[i] = 0;
	if (ev->family == 4) {
		ip = 20;
		p[0] = 0x45;
		put16(p, 2, 40);                     /* total length */
		put16(p, 6, 0x4000);                 /* DF */
		p[8] = PCAP_TTL;
		p[9] = 6;                            /* IPPROTO_TCP */
#pragma unroll
		for (i = 0; i < 4; i++) {            /* v4-mapped: last 4 bytes */
			p[12 + i] = ev->saddr[12 + i];
			p[16 + i] = ev->daddr[12 + i];
		}
		put16(p, 10, fold(sum16(p, 0, 20)));
	} else if (ev->family == 6) {
		ip = 40;
		p[0] = 0x60;
		put16(p, 4, 20);                     /* payload length */
		p[6] = 6;
		p[7] = PCAP_TTL;
#pragma unroll
		for (i = 0; i < 16; i++) {
			p[8 + i] = ev->saddr[i];
			p[24 + i] = ev->daddr[i];
		}
	} else {
		return 0;
	}
	put16(p, ip, ev->sport);
	put16(p, ip + 2, ev->dport);
	if (ev->flags & EV_SEQ) {
		put32(p, ip + 4, ev->seq);
		put32(p, ip + 8, ev->ack);
	}
	p[ip + 12] = 5 << 4;                         /* 20 bytes, no options */
	p[ip + 13] = wire_flags(ev);
	/* checksum over the pseudo header (addresses, protocol, length) */
	{
		u32 s = 6 + 20 + sum16(p, ip, 20);
		if (ip == 20)
			s += sum16(p, 12, 8);
		else
			s += sum16(p, 8, 32);
		put16(p, ip + 16, fold(s));
	}
	return ip + 20;
}

#endif
