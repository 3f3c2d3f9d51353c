//! The Debian package (`cargo deb -p edge-agent`) must carry every model the project trains itself: a box
//! installed from it has no other way to get them (third-party models come from provisioning instead).

use std::path::Path;

#[test]
fn deb_package_ships_every_project_model_in_the_manifest() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let cargo: toml::Value = toml::from_str(&read(&crate_dir.join("Cargo.toml"))).expect("Cargo.toml parses");
    let manifest: toml::Value =
        toml::from_str(&read(&crate_dir.join("../../models/manifest.toml"))).expect("manifest parses");
    let assets: Vec<String> = cargo["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("deb assets")
        .iter()
        .filter_map(|a| a.as_array()?.first()?.as_str().map(String::from))
        .collect();
    let project_models: Vec<&str> = manifest["model"]
        .as_array()
        .expect("models")
        .iter()
        .filter(|m| m["origin"].as_str() == Some("project"))
        .filter_map(|m| m["file"].as_str())
        .collect();
    assert!(!project_models.is_empty());
    for file in project_models {
        let wanted = format!("../../models/{file}");
        assert!(assets.contains(&wanted), "{wanted} is not in [package.metadata.deb] assets");
        assert!(crate_dir.join(&wanted).is_file(), "{wanted} is missing");
    }
}
