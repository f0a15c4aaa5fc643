//! A `files:` entry with `metadata: yaml|json` holds the configuration as
//! the reference writes it (its Go structs through yaml.v3 and
//! `json.MarshalIndent`): every default field, four-space indentation,
//! `[]`/`null` for empty sections. The expected bytes were derived from the
//! reference's `metadata()` for this configuration; the rendering itself is
//! tested field by field in the config crate (`tests/metadata.rs`).

use std::io::Read;

use linuxkit_config::Config;
use linuxkit_oci::{Cache, Platform};
use linuxkit_rootfs::{Entry, EntrySink, Images, Result, assemble};

const YAML: &str = "files:
  - path: etc/linuxkit.yml
    metadata: yaml
  - path: /etc/linuxkit.json
    metadata: json
    mode: \"0644\"
  - path: etc/motd
    contents: |
      hello
      world
";

const WANT_YAML: &str = r#"kernel:
    image: ""
init: []
onboot: []
onshutdown: []
services: []
files:
    - path: etc/linuxkit.yml
      directory: false
      metadata: yaml
      optional: false
    - path: /etc/linuxkit.json
      directory: false
      metadata: json
      optional: false
      mode: "0644"
    - path: etc/motd
      directory: false
      contents: |
        hello
        world
      optional: false
volumes: []
"#;

const WANT_JSON: &str = r#"{
    "kernel": {
        "image": ""
    },
    "init": null,
    "onboot": null,
    "onshutdown": null,
    "services": null,
    "files": [
        {
            "path": "etc/linuxkit.yml",
            "directory": false,
            "metadata": "yaml",
            "optional": false
        },
        {
            "path": "/etc/linuxkit.json",
            "directory": false,
            "metadata": "json",
            "optional": false,
            "mode": "0644"
        },
        {
            "path": "etc/motd",
            "directory": false,
            "contents": "hello\nworld\n",
            "optional": false
        }
    ],
    "volumes": null
}"#;

struct Collect(Vec<(Entry, Vec<u8>)>);

impl EntrySink for Collect {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<()> {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).unwrap();
        self.0.push((entry.clone(), buf));
        Ok(())
    }
}

#[test]
fn metadata_files_hold_the_reference_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&dir.path().join("cache")).unwrap();
    let cfg = Config::parse("t.yml", YAML).unwrap();
    let images = Images {
        cache: &cache,
        platform: Platform::linux(linuxkit_base::Arch::Amd64),
        scratch: dir.path(),
    };
    let mut sink = Collect(Vec::new());
    assemble(&cfg, &images, &mut sink).unwrap();
    let file = |p: &str| {
        let (e, data) = sink.0.iter().find(|(e, _)| e.path == p).unwrap();
        (e.mode, String::from_utf8(data.clone()).unwrap())
    };
    assert_eq!(file("etc/linuxkit.yml"), (0o600, WANT_YAML.to_string()));
    assert_eq!(file("etc/linuxkit.json"), (0o644, WANT_JSON.to_string()));
}
