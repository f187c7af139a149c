//! Dns routes between dig and a real dnsmasq: answers pass byte for byte, over UDP and TCP;
//! every fault kind is seen as dig sees it (Truncate sends dig to TCP); `when` picks queries by
//! name glob and type; the route counts queries and answers by response code.

use crate::support;

use std::net::SocketAddr;

use support::dns_wire::{ask_tcp, ask_udp, dig, query};
use support::{assert_rejected, dnsmasq, spawn_switchboard};

fn dns_route(upstream: SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "dns", protocol: Dns, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
    )
}

#[tokio::test]
async fn answers_pass_byte_for_byte_as_a_direct_query_gets_them() {
    let resolver = dnsmasq::start().await;
    let sb = spawn_switchboard(&dns_route(resolver.addr, "")).await;
    let proxied = sb.addr("dns").await;
    let questions = [
        ("db.primary.shop.internal.", "A", false),
        ("db.primary.shop.internal.", "AAAA", true),
        ("info.shop.internal.", "TXT", true),
        ("shop.internal.", "MX", false),
        ("gone.shop.internal.", "A", true),
    ];
    for (i, (name, qtype, dnssec)) in questions.iter().enumerate() {
        let q = query(0x1000 + i as u16, name, qtype, *dnssec);
        let direct = ask_udp(resolver.addr, &q).await;
        assert_eq!(
            ask_udp(proxied, &q).await,
            direct,
            "{name} {qtype} over UDP"
        );
        assert_eq!(
            ask_tcp(proxied, &q).await,
            ask_tcp(resolver.addr, &q).await,
            "{name} {qtype} over TCP"
        );
    }
    let seen = dig(proxied, "db.primary.shop.internal", "A", &[]).await;
    assert_eq!(seen.status(), Some("NOERROR"), "{}", seen.output);
    assert_eq!(
        seen.answers(),
        ["db.primary.shop.internal. 0 IN A 127.0.0.10"]
    );
}

#[tokio::test]
async fn every_kind_is_seen_by_dig() {
    let resolver = dnsmasq::start().await;
    let sb = spawn_switchboard(&dns_route(resolver.addr, "")).await;
    let proxied = sb.addr("dns").await;
    let name = "db.primary.shop.internal";
    let with = |kind: &str| {
        dns_route(
            resolver.addr,
            &format!(r#"(name: "f", route: "dns", kind: {kind})"#),
        )
    };

    for (kind, status) in [
        ("Rcode(code: NxDomain)", "NXDOMAIN"),
        ("Rcode(code: ServFail)", "SERVFAIL"),
        ("Rcode(code: Refused)", "REFUSED"),
    ] {
        sb.set_rules(&with(kind)).await;
        let udp = dig(proxied, name, "A", &[]).await;
        assert_eq!(udp.status(), Some(status), "{kind}: {}", udp.output);
        let tcp = dig(proxied, name, "A", &["+tcp"]).await;
        assert_eq!(
            tcp.status(),
            Some(status),
            "{kind} over TCP: {}",
            tcp.output
        );
    }

    sb.set_rules(&with(
        r#"Answer(addresses: ["127.0.0.2", "fd00::2"], ttl: 5)"#,
    ))
    .await;
    let failover = dig(proxied, name, "A", &[]).await;
    assert_eq!(failover.status(), Some("NOERROR"));
    assert_eq!(failover.answers(), [format!("{name}. 5 IN A 127.0.0.2")]);
    let v6 = dig(proxied, name, "AAAA", &[]).await;
    assert_eq!(v6.answers(), [format!("{name}. 5 IN AAAA fd00::2")]);
    let mx = dig(proxied, "shop.internal", "MX", &[]).await;
    assert_eq!(
        mx.answers(),
        ["shop.internal. 0 IN MX 10 mail.shop.internal."],
        "other types pass"
    );

    sb.set_rules(&with("Delay(ms: 300)")).await;
    let slow = dig(proxied, name, "A", &[]).await;
    assert_eq!(slow.status(), Some("NOERROR"));
    assert!(
        slow.query_ms().is_some_and(|ms| ms >= 300),
        "{}",
        slow.output
    );

    sb.set_rules(&with("Drop()")).await;
    let silent = dig(proxied, name, "A", &["+time=1"]).await;
    assert!(!silent.success, "dig got an answer: {}", silent.output);
    assert!(silent.output.contains("timed out"), "{}", silent.output);

    sb.set_rules(&with("Truncate()")).await;
    let retried = dig(proxied, name, "A", &[]).await;
    assert!(
        retried.output.contains("Truncated, retrying in TCP mode"),
        "{}",
        retried.output
    );
    assert_eq!(retried.status(), Some("NOERROR"));
    assert_eq!(
        retried.answers(),
        [format!("{name}. 0 IN A 127.0.0.10")],
        "the TCP retry reaches the resolver"
    );

    let route = sb.api().get("/v1/routes/dns").await.body;
    let dns = &route["dns"];
    // 6 Rcode queries, 3 Answer, 1 Delay, 1 Drop, and the truncated one twice (UDP, TCP).
    assert_eq!(dns["queries"], 13, "{route}");
    assert_eq!(dns["queries_tcp"], 4, "{route}");
    assert_eq!(dns["answers"]["NXDOMAIN"], 2, "{route}");
    assert_eq!(dns["answers"]["SERVFAIL"], 2, "{route}");
    assert_eq!(dns["answers"]["REFUSED"], 2, "{route}");
    assert_eq!(dns["answers"]["NOERROR"], 6, "{route}");
    // Rcode 6, Answer 2 (MX passed), the TC answer 1.
    assert_eq!(dns["injected"], 9, "{route}");
    assert_eq!(dns["dropped"], 1, "{route}");
    assert_eq!(dns["server_errors"], 0, "{route}");
}

#[tokio::test]
async fn when_picks_queries_by_name_glob_and_type() {
    let resolver = dnsmasq::start().await;
    let fault = r#"(name: "primary-down", route: "dns", kind: Rcode(code: ServFail),
                    when: (name: "*.primary.shop.internal", qtype: ["A"]))"#;
    let sb = spawn_switchboard(&dns_route(resolver.addr, fault)).await;
    let proxied = sb.addr("dns").await;
    for (name, qtype, status) in [
        ("db.primary.shop.internal", "A", "SERVFAIL"),
        ("DB.Primary.Shop.Internal", "A", "SERVFAIL"),
        ("db.primary.shop.internal", "AAAA", "NOERROR"),
        ("db.secondary.shop.internal", "A", "NOERROR"),
        // The name above db.primary exists without records of its own; `*` needs a label.
        ("primary.shop.internal", "A", "NOERROR"),
    ] {
        let seen = dig(proxied, name, qtype, &[]).await;
        assert_eq!(
            seen.status(),
            Some(status),
            "{name} {qtype}: {}",
            seen.output
        );
    }
    assert_eq!(sb.app.metrics().times_fired("primary-down"), 2);
}

#[test]
fn dns_rules_are_checked_with_file_line_col() {
    let file = |fault: &str| {
        format!(
            r#"(routes: [(name: "d", protocol: Dns, listen: "127.0.0.1:5353", upstream: "127.0.0.1:53")],
 faults: [{fault}])"#
        )
    };
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Drop(), when: (qtype: ["BOGUS"]))"#),
        "qtype \"BOGUS\" is not a DNS record type",
    );
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Drop(), when: (name: "db*.shop"))"#),
        "is not a DNS label or a whole-label *",
    );
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Truncate(after_bytes: 10))"#),
        "write Truncate()",
    );
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Latency(ms: 10))"#),
        "Latency does not fit a Dns route; it takes Rcode, Answer, Delay, Drop or Truncate",
    );
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Answer(addresses: []))"#),
        "give at least one address",
    );
    assert_rejected(
        &file(r#"(name: "f", route: "d", kind: Drop(), when: (method: "GET"))"#),
        "match its queries with name and qtype",
    );
    assert_rejected(
        r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:5000", upstream: "http://h:1")],
 faults: [(name: "f", route: "w", kind: Truncate())])"#,
        "give it (Truncate(after_bytes: 1024))",
    );
}

#[tokio::test]
async fn a_fault_aimed_at_one_client_answers_only_it() {
    let resolver = dnsmasq::start().await;
    let faults = r#"(name: "f", route: "dns", kind: Rcode(code: ServFail), when: (client: ["127.0.0.2/32"]))"#;
    let sb = spawn_switchboard(&dns_route(resolver.addr, faults)).await;
    let proxied = sb.addr("dns").await;
    let name = "db.primary.shop.internal";
    for transport in [&[][..], &["+tcp"][..]] {
        let spared = dig(
            proxied,
            name,
            "A",
            &[&["-b", "127.0.0.1"], transport].concat(),
        )
        .await;
        assert_eq!(spared.status(), Some("NOERROR"), "{}", spared.output);
        let aimed = dig(
            proxied,
            name,
            "A",
            &[&["-b", "127.0.0.2"], transport].concat(),
        )
        .await;
        assert_eq!(aimed.status(), Some("SERVFAIL"), "{}", aimed.output);
    }
}
