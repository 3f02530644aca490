//! Hadoop's own client configuration, as Flume's HDFS sink finds it on its classpath: the
//! `core-site.xml` and `hdfs-site.xml` of `HADOOP_CONF_DIR` (else `$HADOOP_HOME/etc/hadoop`,
//! else `/etc/hadoop/conf`). The hdfs sink reads two things from it: `fs.defaultFS`, the
//! filesystem of an `hdfs.path` without a scheme, and the NameNodes' HTTP addresses
//! (`dfs.namenode.http-address`, per NameNode of an HA nameservice), where WebHDFS answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::hdfs::WEBHDFS_DEFAULT_PORT;

/// The properties of the files read (later files' values win, as Hadoop's `addResource`).
#[derive(Debug, Default)]
pub struct HadoopConf {
    /// Where they were read, for messages; None when no configuration directory was found.
    pub dir: Option<PathBuf>,
    props: BTreeMap<String, String>,
}

impl HadoopConf {
    /// The configuration of this machine's Hadoop client, if it has one. A file that exists but
    /// cannot be read or parsed is an error naming it.
    pub fn locate() -> Result<HadoopConf, String> {
        let candidates = [
            std::env::var_os("HADOOP_CONF_DIR").map(PathBuf::from),
            std::env::var_os("HADOOP_HOME").map(|h| PathBuf::from(h).join("etc/hadoop")),
            Some(PathBuf::from("/etc/hadoop/conf")),
        ];
        match candidates
            .into_iter()
            .flatten()
            .find(|d| d.join("core-site.xml").is_file())
        {
            Some(dir) => HadoopConf::read(&dir),
            None => Ok(HadoopConf::default()),
        }
    }

    /// `core-site.xml` then `hdfs-site.xml` of `dir`, each if present.
    pub fn read(dir: &Path) -> Result<HadoopConf, String> {
        let mut conf = HadoopConf {
            dir: Some(dir.to_owned()),
            props: BTreeMap::new(),
        };
        for name in ["core-site.xml", "hdfs-site.xml"] {
            let path = dir.join(name);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            };
            conf.add(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(conf)
    }

    /// Adds the `<property><name>…</name><value>…</value></property>` entries of one file.
    fn add(&mut self, xml: &str) -> Result<(), String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        for property in doc.descendants().filter(|n| n.has_tag_name("property")) {
            let child = |tag: &str| {
                property
                    .children()
                    .find(|c| c.has_tag_name(tag))
                    .map(|c| c.text().unwrap_or("").trim().to_owned())
            };
            if let (Some(name), Some(value)) = (child("name"), child("value")) {
                self.props.insert(name, value);
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `fs.defaultFS` (or its old name `fs.default.name`).
    pub fn default_fs(&self) -> Option<&str> {
        self.get("fs.defaultFS")
            .or_else(|| self.get("fs.default.name"))
    }

    /// The WebHDFS endpoints (`http://host:port`) of the filesystem `hdfs://authority`: each
    /// NameNode's HTTP address when `authority` is an HA nameservice of this configuration,
    /// else `dfs.namenode.http-address` (its host taken from `authority` when it is a wildcard),
    /// else `authority`'s host at Hadoop 3's port 9870.
    pub fn webhdfs_endpoints(&self, authority: &str) -> Vec<String> {
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        let nameservice = self
            .get("dfs.nameservices")
            .is_some_and(|list| list.split(',').any(|ns| ns.trim() == authority));
        if nameservice {
            let endpoints: Vec<String> = self
                .get(&format!("dfs.ha.namenodes.{authority}"))
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|nn| !nn.is_empty())
                .filter_map(|nn| self.get(&format!("dfs.namenode.http-address.{authority}.{nn}")))
                .map(|a| format!("http://{a}"))
                .collect();
            if !endpoints.is_empty() {
                return endpoints;
            }
        }
        if let Some(address) = self.get("dfs.namenode.http-address") {
            let (h, port) = address.rsplit_once(':').unwrap_or((address, ""));
            let h = if h == "0.0.0.0" || h.is_empty() {
                host
            } else {
                h
            };
            let port = if port.is_empty() {
                WEBHDFS_DEFAULT_PORT.to_string()
            } else {
                port.to_owned()
            };
            return vec![format!("http://{h}:{port}")];
        }
        vec![format!("http://{host}:{WEBHDFS_DEFAULT_PORT}")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(core: &str, hdfs: &str) -> (tempfile::TempDir, HadoopConf) {
        let dir = tempfile::tempdir().unwrap();
        let site = |props: &str| {
            format!(
                "<?xml version=\"1.0\"?>\n<?xml-stylesheet type=\"text/xsl\" \
                 href=\"configuration.xsl\"?>\n<!-- a comment -->\n<configuration>{props}\
                 </configuration>\n"
            )
        };
        std::fs::write(dir.path().join("core-site.xml"), site(core)).unwrap();
        std::fs::write(dir.path().join("hdfs-site.xml"), site(hdfs)).unwrap();
        let c = HadoopConf::read(dir.path()).unwrap();
        (dir, c)
    }

    fn prop(name: &str, value: &str) -> String {
        format!(
            "<property>\n  <name>{name}</name>\n  <value>{value}</value>\n  \
             <description>x</description>\n</property>\n"
        )
    }

    #[test]
    fn default_fs_and_plain_namenode_addresses() {
        let (_d, c) = conf(&prop("fs.defaultFS", "hdfs://nn.example:8020"), "");
        assert_eq!(c.default_fs(), Some("hdfs://nn.example:8020"));
        assert_eq!(
            c.webhdfs_endpoints("nn.example:8020"),
            ["http://nn.example:9870"]
        );
        let (_d, c) = conf(
            &prop("fs.default.name", "hdfs://old:9000"),
            &prop("dfs.namenode.http-address", "0.0.0.0:50070"),
        );
        assert_eq!(c.default_fs(), Some("hdfs://old:9000"));
        assert_eq!(c.webhdfs_endpoints("old:9000"), ["http://old:50070"]);
        assert_eq!(
            HadoopConf::default().webhdfs_endpoints("h"),
            ["http://h:9870"]
        );
    }

    #[test]
    fn an_ha_nameservice_gives_every_namenodes_address() {
        let hdfs = [
            prop("dfs.nameservices", "prod"),
            prop("dfs.ha.namenodes.prod", "nn1, nn2"),
            prop("dfs.namenode.http-address.prod.nn1", "a.example:9870"),
            prop("dfs.namenode.http-address.prod.nn2", "b.example:9870"),
        ]
        .concat();
        let (_d, c) = conf(&prop("fs.defaultFS", "hdfs://prod"), &hdfs);
        assert_eq!(
            c.webhdfs_endpoints("prod"),
            ["http://a.example:9870", "http://b.example:9870"]
        );
        // Another authority is not the nameservice.
        assert_eq!(c.webhdfs_endpoints("other:8020"), ["http://other:9870"]);
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("core-site.xml"),
            "<configuration><property>",
        )
        .unwrap();
        let err = HadoopConf::read(dir.path()).unwrap_err();
        assert!(err.contains("core-site.xml"), "{err}");
    }
}
