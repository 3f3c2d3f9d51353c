//! The review UI in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`) driven through
//! WebDriver against the real `central-sync` binary on 127.0.0.1. An officer logs in, approves one case,
//! rejects one with a reason, corrects a plate and approves that case; screenshots of each step are saved in
//! `target/ui-screenshots/` (or `$TE_SCREENSHOT_DIR`).

use central_protocol::{EvidenceRecord, EvidenceUpload};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use te_system_tests::{central_admin, free_port, http, shared_dir, Central};
use te_types::{EvidenceId, PlateConsensus, PlateVote};

const PASSWORD: &str = "mat-khau-thu-nghiem";

/// chromedriver on a loopback port; killed when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    browser_sized(driver, "1280,1100").await
}

/// A browser whose window is `size` ("width,height").
async fn browser_sized(driver: &Driver, size: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={size}")]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session")
}

/// POSTs one sealed red-light record with a real photograph as its overview; `plate` is the box's reading.
/// With `plate_picture`, the plate was read twice: once from that picture, once unreadably (no picture).
fn upload(port: u16, jpeg: &[u8], plate: Option<&str>, camera: &str, plate_picture: Option<&[u8]>) -> EvidenceId {
    let vote = |text: Option<&str>, crop: Option<&[u8]>| PlateVote {
        frame_number: 40,
        text: text.map(str::to_string),
        raw: text.unwrap_or("5?L2/1?9??").replace(['-', '.'], ""),
        confidence: if text.is_some() { 0.97 } else { 0.41 },
        weight: if text.is_some() { 0.9 } else { 0.2 },
        crop_sha256: crop.map(central_protocol::sha256_hex),
    };
    let votes = match plate_picture {
        Some(picture) => vec![vote(plate, Some(picture)), vote(None, None)],
        None => vec![],
    };
    let record = EvidenceRecord {
        kind: te_types::EventKind::RedLight,
        plate: plate.map(|p| PlateConsensus { text: Some(p.into()), share: 0.82, votes }),
        ..EvidenceRecord::synthetic("ui-test-box", camera, jpeg)
    };
    let key = central_protocol::SigningKey::from_bytes(&[9u8; 32]);
    let seal = central_protocol::seal(&record, &key);
    let pictures: Vec<Vec<u8>> = plate_picture.into_iter().map(<[u8]>::to_vec).collect();
    let upload = EvidenceUpload::new(record.clone(), seal, jpeg).with_plate_crops(&pictures);
    let body = serde_json::to_string(&upload).expect("json");
    let request = format!(
        "POST /api/v1/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let response = http(port, &request).expect("upload answered");
    assert!(response.starts_with("HTTP/1.1 201"), "{}", response.lines().next().unwrap_or_default());
    record.evidence_id
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("TE_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn snap(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("save screenshot");
}

/// Waits (up to 15 s) until the element's text satisfies `want`: a form POST navigates, and until the new page
/// is in, the element read may be the old page's or gone.
async fn wait_text(browser: &Client, css: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if want(&text) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed what was expected; last text {last:?}");
}

/// Logs `user` in through the login page (password PASSWORD) and waits for the queue.
async fn log_in(browser: &Client, base: &str, user: &str) {
    browser.goto(&format!("{base}/login")).await.expect("login page");
    browser.find(Locator::Id("username")).await.expect("username").send_keys(user).await.expect("type");
    browser.find(Locator::Id("password")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    browser.find(Locator::Id("login")).await.expect("button").click().await.expect("log in");
    wait_text(browser, "#who", |t| t == user).await;
}

/// A fresh central service on a loopback port with one officer account (password PASSWORD); its folder lives
/// as long as it does.
struct Service {
    // Fields drop in this order: the service stops before its folder goes.
    _central: Central,
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
}

fn service(user: &str, role: &str) -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("central");
    let port = free_port();
    let central = Central::start(port, &data);
    let added = central_admin(&data, &["user", "add", "--username", user, "--role", role], PASSWORD);
    assert!(added.contains(user), "{added}");
    Service { _central: central, _dir: dir, data, port }
}

async fn open_case(browser: &Client, base: &str, id: EvidenceId) {
    browser.goto(&format!("{base}/evidence/{id}")).await.expect("case page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_logs_in_approves_rejects_and_corrects_a_plate_in_chromium() {
    let service = service("lan.reviewer", "reviewer");
    let (data, port) = (service.data.clone(), service.port);
    let photo = std::fs::read(shared_dir().join("data/vn_scenes/1.jpg")).expect("a real street photograph");
    // A real Vietnamese plate picture (its label: 59-L2/149.99) as the box's read of the first case.
    let plate = std::fs::read(shared_dir().join("data/vn_plates/images/10xemay1217.jpg")).expect("a plate picture");
    let approve_me = upload(port, &photo, Some("59-L2/149.99"), "nga-tu-1", Some(&plate));
    let reject_me = upload(port, &photo, Some("29A-111.22"), "nga-tu-1", None);
    let correct_me = upload(port, &photo, None, "nga-tu-2", None);

    let driver = Driver::start();
    let browser = browser(&driver).await;
    let base = format!("http://127.0.0.1:{port}");

    // Not logged in: the login page, which leads back to the queue.
    browser.goto(&format!("{base}/")).await.expect("open");
    assert!(browser.current_url().await.expect("url").path().starts_with("/login"));
    browser.find(Locator::Id("username")).await.expect("username").send_keys("lan.reviewer").await.expect("type");
    browser.find(Locator::Id("password")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    snap(&browser, "01-login").await;
    browser.find(Locator::Id("login")).await.expect("button").click().await.expect("log in");
    wait_text(&browser, "#who", |t| t == "lan.reviewer").await;
    let cases = browser.find_all(Locator::Css("tr.case")).await.expect("rows");
    assert_eq!(cases.len(), 3, "three pending cases");
    snap(&browser, "02-queue").await;

    open_case(&browser, &base, approve_me).await;
    let seal = wait_text(&browser, "#seal", |t| t.contains("chữ ký Ed25519 đúng")).await;
    assert!(seal.contains("ảnh biển số: ✔"), "the plate picture matches its hash: {seal}");
    // The plate crop beside the plate, and each read's picture in the votes table, really drawn by the browser.
    let drawn = browser
        .execute(
            "return [...document.querySelectorAll('img.plate-crop, img.vote-crop')].map(i => i.naturalWidth)",
            vec![],
        )
        .await
        .expect("script");
    let widths: Vec<u64> = serde_json::from_value(drawn).expect("widths");
    assert_eq!(widths.len(), 2, "one plate crop, one read with a picture (the unreadable read has none)");
    assert!(widths.iter().all(|w| *w > 0), "pictures load: {widths:?}");
    assert_eq!(browser.find_all(Locator::Css("#votes tr.winner")).await.expect("rows").len(), 1);
    browser.execute("document.getElementById('plate-crop').scrollIntoView()", vec![]).await.expect("scroll");
    snap(&browser, "02b-plate-pictures").await;
    browser.find(Locator::Id("approve")).await.expect("approve").click().await.expect("approve");
    // A decision opens the next pending case (oldest first) and says what was done.
    wait_text(&browser, "#notice", |t| t.contains("Đã duyệt")).await;
    assert_eq!(browser.current_url().await.expect("url").path(), format!("/evidence/{reject_me}"));
    snap(&browser, "03-approved-next-case-opens").await;
    open_case(&browser, &base, approve_me).await;
    wait_text(&browser, "#status", |t| t.contains("Đã duyệt") && t.contains("lan.reviewer")).await;

    open_case(&browser, &base, reject_me).await;
    browser.find(Locator::Id("reject-note")).await.expect("note").send_keys("xe cứu thương").await.expect("type");
    browser.find(Locator::Id("reject")).await.expect("reject").click().await.expect("reject");
    wait_text(&browser, "#notice", |t| t.contains("Đã loại bỏ")).await;
    assert_eq!(browser.current_url().await.expect("url").path(), format!("/evidence/{correct_me}"));
    open_case(&browser, &base, reject_me).await;
    wait_text(&browser, "#status", |t| t.contains("Đã loại") && t.contains("xe cứu thương")).await;
    snap(&browser, "04-rejected").await;

    // No plate read: approving is refused until the plate is corrected; a wrong plate is refused too (in
    // Vietnamese, the page's language).
    open_case(&browser, &base, correct_me).await;
    browser.find(Locator::Id("approve")).await.expect("approve").click().await.expect("approve");
    wait_text(&browser, "#notice", |t| t.contains("hãy sửa biển số trước")).await;
    browser.find(Locator::Id("plate-input")).await.expect("plate").send_keys("ABC").await.expect("type");
    browser.find(Locator::Id("correct")).await.expect("correct").click().await.expect("correct");
    wait_text(&browser, "#notice", |t| t.contains("không phải biển số Việt Nam")).await;
    browser.find(Locator::Id("plate-input")).await.expect("plate").send_keys("30a99999").await.expect("type");
    browser.find(Locator::Id("correct")).await.expect("correct").click().await.expect("correct");
    wait_text(&browser, "#plate", |t| t == "30A-999.99").await;
    browser.find(Locator::Id("approve")).await.expect("approve").click().await.expect("approve");
    // The last pending case: back to the queue, now empty.
    wait_text(&browser, "#who", |t| t == "lan.reviewer").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.current_url().await.expect("url").path() != "/" {
        assert!(Instant::now() < deadline, "the queue did not open after the last decision");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open_case(&browser, &base, correct_me).await;
    wait_text(&browser, "#status", |t| t.contains("Đã duyệt")).await;
    snap(&browser, "05-corrected-and-approved").await;

    // The queue filtered to approved cases; the English view.
    browser.goto(&format!("{base}/?status=approved")).await.expect("filtered");
    assert_eq!(browser.find_all(Locator::Css("tr.case")).await.expect("rows").len(), 2);
    browser.goto(&format!("{base}/lang/en")).await.expect("english");
    browser.goto(&format!("{base}/?status=")).await.expect("all");
    assert!(browser.source().await.expect("html").contains("Review queue"));
    snap(&browser, "06-queue-english").await;
    // The self-audit: nga-tu-1's approved case was read right by its box; nga-tu-2's was not read at all.
    browser.goto(&format!("{base}/accuracy")).await.expect("accuracy");
    let rows = browser.find_all(Locator::Css("tr.accuracy")).await.expect("rows");
    assert_eq!(rows.len(), 2, "one row per camera and period");
    snap(&browser, "07-accuracy").await;
    browser.close().await.expect("close the browser");

    // Every action is in the audit log and the chain holds.
    let audit = central_admin(&data, &["audit", "verify"], "");
    assert!(audit.ends_with("chain=intact"), "{audit}");
    let entries: u64 = audit.split("entries=").nth(1).and_then(|s| s.split(' ').next()?.parse().ok()).expect("count");
    // token, user, login, approve, reject, correct_plate, approve (the refused tries change nothing).
    assert_eq!(entries, 7, "{audit}");
    drop(service);
}

/// Presses one key as a keyboard would (WebDriver actions: the page's own key handler sees it).
async fn press(browser: &Client, key: char) {
    let keys =
        KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    browser.perform_actions(keys).await.expect("key press");
}

/// Waits (up to 15 s) until the browser shows `path` and the page has loaded.
async fn wait_for_page(browser: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = browser.current_url().await.expect("url");
        if url.path() == path {
            let ready = browser.execute("return document.readyState", vec![]).await.expect("script");
            if ready.as_str() == Some("complete") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{path} never loaded; at {url}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The measure of the review flow: 20 clear cases decided with the keyboard alone on a 1366x768 screen
/// (A approves, 2 rejects with the second reason, N moves on). Prints the UI time, page loads and requests
/// (`keyboard_review` line); the time is a figure to report, not a pass mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_decides_twenty_cases_with_the_keyboard_alone() {
    let service = service("lan.reviewer", "reviewer");
    let (data, port) = (service.data.clone(), service.port);
    let photo = std::fs::read(shared_dir().join("data/vn_scenes/1.jpg")).expect("a real street photograph");
    let plate = std::fs::read(shared_dir().join("data/vn_plates/images/10xemay1217.jpg")).expect("a plate picture");
    // Oldest first: the order they were recorded in. Every fifth is rejected (reason 2: no violation).
    let cases: Vec<EvidenceId> = (0..20)
        .map(|i| upload(port, &photo, Some(&format!("59-L2/149.{:02}", 10 + i)), "nga-tu-1", Some(&plate)))
        .collect();

    let driver = Driver::start();
    let browser = browser_sized(&driver, "1366,768").await;
    let base = format!("http://127.0.0.1:{port}");
    log_in(&browser, &base, "lan.reviewer").await;
    open_case(&browser, &base, cases[0]).await;
    wait_for_page(&browser, &format!("/evidence/{}", cases[0])).await;
    // The whole decision is on the first screen: the buttons' bottoms are inside the window.
    let fits = browser
        .execute(
            "return ['approve','reject','plate-input','next-case'].every(id => { const r = document.getElementById(id)\
             .getBoundingClientRect(); return r.bottom <= window.innerHeight && r.right <= window.innerWidth; })",
            vec![],
        )
        .await
        .expect("script");
    snap(&browser, "08-case-1366x768").await;
    assert_eq!(fits.as_bool(), Some(true), "the decision forms are in view at 1366x768");
    // The magnifier: Z shows the lens over the overview, Z again hides it.
    press(&browser, 'z').await;
    let lens = browser.execute("return document.getElementById('lens').hidden", vec![]).await.expect("script");
    assert_eq!(lens.as_bool(), Some(false), "Z shows the magnifier");
    snap(&browser, "09-magnifier").await;
    press(&browser, 'z').await;

    let (mut resources, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    for (i, id) in cases.iter().enumerate() {
        wait_for_page(&browser, &format!("/evidence/{id}")).await;
        // This page's requests: the document and what it loaded (pictures, the script unless cached).
        let counts = browser
            .execute(
                "const r = performance.getEntriesByType('resource'); const n = performance.getEntriesByType('navigation'); \
                 return [r.length + n.length, [...r, ...n].reduce((s, e) => s + (e.transferSize || 0), 0)]",
                vec![],
            )
            .await
            .expect("script");
        let counts: Vec<u64> = serde_json::from_value(counts).unwrap_or_default();
        resources += counts.first().copied().unwrap_or(0);
        bytes += counts.get(1).copied().unwrap_or(0);
        press(&browser, if i % 5 == 4 { '2' } else { 'a' }).await;
    }
    wait_for_page(&browser, "/").await;
    let ui_s = started.elapsed().as_secs_f64();
    snap(&browser, "10-queue-after-twenty").await;
    // Every case was decided once, as keyed.
    browser.goto(&format!("{base}/?status=approved&per_page=50")).await.expect("approved");
    assert_eq!(browser.find_all(Locator::Css("tr.case")).await.expect("rows").len(), 16);
    browser.goto(&format!("{base}/?status=rejected&per_page=50")).await.expect("rejected");
    assert_eq!(browser.find_all(Locator::Css("tr.case")).await.expect("rows").len(), 4);
    browser.close().await.expect("close the browser");
    let audit = central_admin(&data, &["audit", "verify"], "");
    assert!(audit.ends_with("chain=intact"), "{audit}");
    println!(
        "keyboard_review cases=20 ui_s={ui_s:.1} s_per_case={:.2} page_loads=20 requests={resources} \
         requests_per_case={:.1} transferred_kib={}",
        ui_s / 20.0,
        resources as f64 / 20.0,
        bytes / 1024
    );
    drop(service);
}

/// Plate search and bulk reject in the browser: the officer finds two cases by part of their plate, picks them
/// and rejects both with one reason; each gets its own audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_finds_cases_by_part_of_a_plate_and_rejects_the_picked_ones_at_once() {
    let service = service("lan.reviewer", "reviewer");
    let (data, port) = (service.data.clone(), service.port);
    let photo = std::fs::read(shared_dir().join("data/vn_scenes/1.jpg")).expect("a real street photograph");
    for plate in ["59-L2/149.99", "59-L2/149.98", "51F-222.61"] {
        upload(port, &photo, Some(plate), "nga-tu-1", None);
    }
    let driver = Driver::start();
    let browser = browser(&driver).await;
    let base = format!("http://127.0.0.1:{port}");
    log_in(&browser, &base, "lan.reviewer").await;

    // Part of the plate, typed the way it is spoken: punctuation and case do not matter.
    browser.find(Locator::Id("filter-plate")).await.expect("plate filter").send_keys("l2 149").await.expect("type");
    browser.find(Locator::Css("#filters button")).await.expect("filter").click().await.expect("filter");
    wait_text(&browser, "#matching", |t| t == "2").await;
    let thumbs = browser
        .execute(
            "return [...document.querySelectorAll('tr.case img')].map(i => [i.naturalWidth, i.currentSrc])",
            vec![],
        )
        .await
        .expect("script");
    let thumbs: Vec<(u64, String)> = serde_json::from_value(thumbs).expect("thumbnails");
    assert!(thumbs.iter().all(|(w, src)| *w == 320 && src.ends_with("/thumb.jpg")), "{thumbs:?}");
    for pick in browser.find_all(Locator::Css("input.pick")).await.expect("boxes") {
        pick.click().await.expect("pick");
    }
    snap(&browser, "11-plate-search-picked").await;
    browser.find(Locator::Id("bulk-reject")).await.expect("bulk").click().await.expect("reject");
    wait_text(&browser, "#notice", |t| t.contains("Đã loại bỏ 2 hồ sơ")).await;
    snap(&browser, "12-bulk-rejected").await;
    // Back on the same search, now without pending matches; the third case is still pending.
    let kept =
        browser.find(Locator::Id("filter-plate")).await.expect("plate filter").prop("value").await.expect("value");
    assert_eq!(kept.as_deref(), Some("l2 149"), "the queue comes back with the officer's filters");
    assert!(browser.find_all(Locator::Css("tr.case")).await.expect("rows").is_empty());
    browser.goto(&format!("{base}/")).await.expect("queue");
    assert_eq!(browser.find_all(Locator::Css("tr.case")).await.expect("rows").len(), 1, "one case still pending");
    browser.close().await.expect("close the browser");
    let audit = central_admin(&data, &["audit", "verify"], "");
    assert!(audit.ends_with("chain=intact"), "{audit}");
    // token, user, login, and one reject per case.
    assert!(audit.contains("entries=5"), "{audit}");
    drop(service);
}

/// The hand-off taken back: a supervisor approves a case and reopens it in the browser; the fines system's feed
/// of withdrawals (its own export token) lists it with the reason, and its notice is gone with the approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reopens_an_approved_case_and_the_fines_system_sees_it_withdrawn() {
    let service = service("minh.supervisor", "supervisor");
    let (data, port) = (service.data.clone(), service.port);
    let fines = central_admin(&data, &["token", "create", "--name", "fines-system", "--role", "export"], "");
    let fines = fines.lines().last().unwrap_or_default().trim().to_string();
    let photo = std::fs::read(shared_dir().join("data/vn_scenes/1.jpg")).expect("a real street photograph");
    let id = upload(port, &photo, Some("51F-598.81"), "nga-tu-1", None);
    let get = |path: &str| {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {fines}\r\nConnection: close\r\n\r\n"
        );
        http(port, &request).expect("answered")
    };

    let driver = Driver::start();
    let browser = browser(&driver).await;
    let base = format!("http://127.0.0.1:{port}");
    log_in(&browser, &base, "minh.supervisor").await;
    open_case(&browser, &base, id).await;
    wait_for_page(&browser, &format!("/evidence/{id}")).await;
    press(&browser, 'a').await;
    wait_for_page(&browser, "/").await;
    let approved = get(&format!("/api/v1/evidence/{id}/notice.pdf"));
    assert!(approved.starts_with("HTTP/1.1 200") && approved.contains("%PDF-"), "the approved case has a notice");

    open_case(&browser, &base, id).await;
    browser
        .find(Locator::Id("reopen-note"))
        .await
        .expect("reason")
        .send_keys("sai biển số, xem lại")
        .await
        .expect("type");
    browser.find(Locator::Id("reopen")).await.expect("reopen").click().await.expect("reopen");
    wait_text(&browser, "#notice", |t| t.contains("Đã mở lại")).await;
    wait_text(&browser, "#status", |t| t.contains("Chờ")).await;
    snap(&browser, "13-reopened").await;
    browser.close().await.expect("close the browser");

    let feed = get("/api/v1/export/withdrawn");
    assert!(feed.starts_with("HTTP/1.1 200"), "{feed}");
    let body = feed.split("\r\n\r\n").nth(1).unwrap_or_default();
    let withdrawn: Vec<serde_json::Value> = serde_json::from_str(body).expect("the feed is JSON");
    assert_eq!(withdrawn.len(), 1, "{body}");
    assert_eq!(withdrawn[0]["evidence_id"], id.to_string());
    assert_eq!(withdrawn[0]["withdrawn_by"], "minh.supervisor");
    assert_eq!(withdrawn[0]["reason"], "sai biển số, xem lại");
    assert!(get(&format!("/api/v1/evidence/{id}/notice.pdf")).starts_with("HTTP/1.1 403"), "no notice once withdrawn");
    drop(service);
}
