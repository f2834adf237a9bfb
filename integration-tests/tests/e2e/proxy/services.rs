//! Services beyond a plain load balancer, from a Traefik dynamic file:
//! sticky sessions (`loadBalancer.sticky.cookie`) and `mirroring`.

use integration_tests::{EchoBackend, eventually, request};

use super::{DEADLINE, Routes, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn sticky_sessions_and_mirroring_from_a_dynamic_file() {
    let one = EchoBackend::start("one").await;
    let two = EchoBackend::start("two").await;
    let primary = EchoBackend::start("primary").await;
    let shadow = EchoBackend::start("shadow").await;
    let routes = Routes::new()
        .router("sticky", "Host(`sticky.example`)", "app")
        .load_balancer_with(
            "app",
            &[one.url(), two.url()],
            "sticky:\n  cookie:\n    name: lb\n    secure: true\n    httpOnly: true\n    \
             sameSite: strict\n    maxAge: 60",
        )
        .router("mirrored", "Host(`mirror.example`)", "mirrored")
        .service(
            "mirrored",
            "mirroring:\n  service: primary\n  maxBodySize: 1024\n  mirrors:\n    \
             - name: shadow\n      percent: 50",
        )
        .load_balancer("primary", &[primary.url()])
        .load_balancer("shadow", &[shadow.url()]);
    let stack = Stack::start(&routes).await;
    let url = stack.url("/");

    // Sticky: the first answers set a cookie naming their backend (by a
    // hash, not its address)...
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let response = request("GET", &url, &[("host", "sticky.example")], Vec::new())
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let set_cookie = response
            .headers
            .get("set-cookie")
            .cloned()
            .unwrap_or_else(|| {
                panic!("no Set-Cookie in {:?}", response.headers);
            });
        let (pair, attributes) = set_cookie.split_once(';').unwrap();
        assert_eq!(
            attributes,
            " Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
        );
        let value = pair.strip_prefix("lb=").unwrap();
        assert_eq!(value.len(), 16, "{set_cookie}");
        for backend in [&one, &two] {
            let port = backend.address.port().to_string();
            assert!(!set_cookie.contains(&port), "{set_cookie}");
        }
        stuck.push((pair.to_owned(), response.headers["x-backend"].clone()));
    }
    assert_eq!(
        [stuck[0].1.as_str(), stuck[1].1.as_str()],
        ["one", "two"],
        "without a cookie, the rotation"
    );
    // ... and requests carrying it stay there, without a new cookie.
    for (cookie, backend) in &stuck {
        for _ in 0..10 {
            let response = request(
                "GET",
                &url,
                &[("host", "sticky.example"), ("cookie", cookie)],
                Vec::new(),
            )
            .await
            .unwrap();
            assert_eq!(&response.headers["x-backend"], backend);
            assert!(!response.headers.contains_key("set-cookie"));
        }
    }

    // Mirroring: `primary` answers everything, `shadow` gets every other
    // request, body included.
    let post = |body: Vec<u8>| {
        let url = url.clone();
        async move {
            let response = request("POST", &url, &[("host", "mirror.example")], body)
                .await
                .unwrap();
            assert_eq!(
                (response.status, response.headers["x-backend"].as_str()),
                (200, "primary"),
                "{}",
                response.body
            );
        }
    };
    for _ in 0..10 {
        post(b"hello".to_vec()).await;
    }
    let copies = |shadow: &EchoBackend| shadow.received().len();
    eventually("5 copies at shadow", DEADLINE, || async {
        match copies(&shadow) {
            5 => Ok(()),
            n => Err(format!("{n} copies")),
        }
    })
    .await;
    for copy in shadow.received() {
        assert_eq!(
            (copy.method.as_str(), copy.body.as_slice()),
            ("POST", &b"hello"[..])
        );
        assert_eq!(copy.headers["host"], "mirror.example");
    }
    // The 11th request's turn, but its body is over maxBodySize: served, not
    // copied. The 13th is copied.
    post(vec![b'x'; 2000]).await;
    post(b"twelve".to_vec()).await;
    post(b"thirteen".to_vec()).await;
    eventually("the 13th request's copy", DEADLINE, || async {
        match copies(&shadow) {
            6 => Ok(()),
            n => Err(format!("{n} copies")),
        }
    })
    .await;
    assert_eq!(shadow.received()[5].body, b"thirteen");
    let at_primary = primary.received();
    assert_eq!(at_primary.len(), 13);
    assert_eq!(at_primary[10].body.len(), 2000);
}
