//! Hadoop's own client configuration, as Flume's HDFS sink finds it on its classpath: the
//! `core-site.xml` and `hdfs-site.xml` of `HADOOP_CONF_DIR` (else `$HADOOP_HOME/etc/hadoop`,
//! else `/etc/hadoop/conf`). The hdfs sink reads two things from it: `fs.defaultFS`, the
//! filesystem of an `hdfs.path` without a scheme, and the NameNodes' HTTP addresses
//! (`dfs.namenode.http-address`, per NameNode of an HA nameservice), where WebHDFS answers.
//! The files are read as Hadoop's `Configuration` reads them: both property forms, `final`,
//! `xi:include`, and `${…}` substitution.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Hadoop 3's NameNode HTTP port, the WebHDFS endpoint of an `hdfs://` path by default.
pub const WEBHDFS_DEFAULT_PORT: u16 = 9870;

/// The properties of the files read, as Hadoop's `Configuration` holds them: a later file's
/// value replaces an earlier one unless that one was `final`.
#[derive(Debug, Default)]
pub struct HadoopConf {
    /// Where they were read, for messages; None when no configuration directory was found.
    pub dir: Option<PathBuf>,
    props: BTreeMap<String, String>,
    finals: BTreeSet<String>,
}

const XINCLUDE: &str = "http://www.w3.org/2001/XInclude";
/// How deep `xi:include`s may nest, and how many `${…}` expansions a value may take (Hadoop's
/// `MAX_SUBST` is 20).
const MAX_INCLUDE_DEPTH: usize = 10;
const MAX_SUBST: usize = 20;

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
            ..HadoopConf::default()
        };
        for name in ["core-site.xml", "hdfs-site.xml"] {
            let path = dir.join(name);
            if path.exists() {
                conf.add_file(&path, 0)?;
            }
        }
        Ok(conf)
    }

    /// Adds the properties of the file at `path`; errors name the file.
    fn add_file(&mut self, path: &Path, depth: usize) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc =
            roxmltree::Document::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        self.add_children(doc.root_element(), base, depth)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Hadoop's parser, over the children of a `<configuration>`: `<property>` in its long
    /// (`<name>`, `<value>`, `<final>`) or short (attributes) form, nested `<configuration>`s,
    /// and `xi:include` (its `xi:fallback` only when the included file cannot be read).
    fn add_children(
        &mut self,
        node: roxmltree::Node,
        base: &Path,
        depth: usize,
    ) -> Result<(), String> {
        for child in node.children().filter(|n| n.is_element()) {
            let tag = child.tag_name();
            match (tag.namespace(), tag.name()) {
                (None, "property") => self.add_property(child),
                (None, "configuration") => self.add_children(child, base, depth)?,
                (Some(XINCLUDE), "include") => {
                    let href = child
                        .attribute("href")
                        .ok_or("an xi:include without href")?;
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(format!("xi:include {href}: nested too deep"));
                    }
                    let path = base.join(href);
                    if let Err(e) = self.add_file(&path, depth + 1) {
                        let fallback = child.children().find(|c| {
                            c.tag_name().namespace() == Some(XINCLUDE)
                                && c.tag_name().name() == "fallback"
                        });
                        match fallback {
                            Some(f) => self.add_children(f, base, depth)?,
                            None => return Err(format!("xi:include: {e}")),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn add_property(&mut self, property: roxmltree::Node) {
        // The text of a child element, comments skipped and the pieces around them joined.
        let child = |tag: &str| {
            property.children().find(|c| c.has_tag_name(tag)).map(|c| {
                c.descendants()
                    .filter(|d| d.is_text())
                    .filter_map(|d| d.text())
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
        };
        let attribute = |name: &str| property.attribute(name).map(|v| v.trim().to_owned());
        let Some(name) = child("name").or_else(|| attribute("name")) else {
            return;
        };
        // A property without a value leaves an earlier one as it was.
        let Some(value) = child("value")
            .or_else(|| attribute("value"))
            .filter(|v| !v.is_empty())
        else {
            return;
        };
        if self.finals.contains(&name) {
            return;
        }
        if child("final").or_else(|| attribute("final")).as_deref() == Some("true") {
            self.finals.insert(name.clone());
        }
        self.props.insert(name, value);
    }

    /// A property's value with `${name}` (another property) and `${env.NAME}` (the environment)
    /// substituted, as Hadoop's `Configuration.get`; a reference it cannot resolve stays.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut value = self.props.get(key)?.clone();
        for _ in 0..MAX_SUBST {
            let Some(start) = value.find("${") else { break };
            let Some(len) = value[start..].find('}') else {
                break;
            };
            let var = &value[start + 2..start + len];
            let resolved = match var.strip_prefix("env.") {
                Some(env) => std::env::var(env).ok(),
                None => self.props.get(var).cloned(),
            };
            let Some(resolved) = resolved else { break };
            value.replace_range(start..start + len + 1, &resolved);
        }
        Some(value).filter(|v| !v.is_empty())
    }

    /// `fs.defaultFS` (or its old name `fs.default.name`).
    pub fn default_fs(&self) -> Option<String> {
        self.get("fs.defaultFS")
            .or_else(|| self.get("fs.default.name"))
    }

    /// The WebHDFS endpoints (`http://host:port`) of the filesystem `hdfs://authority`:
    /// - for a nameservice of this configuration (`dfs.nameservices`), each of its NameNodes'
    ///   `dfs.namenode.http-address.<ns>.<nn>` (HA), else its `dfs.namenode.http-address.<ns>`;
    /// - for the NameNode this configuration is about (the host of `fs.defaultFS` or of
    ///   `dfs.namenode.rpc-address`), `dfs.namenode.http-address` (a wildcard host is
    ///   `authority`'s);
    /// - else `authority`'s host at Hadoop 3's port 9870: another cluster's NameNode.
    pub fn webhdfs_endpoints(&self, authority: &str) -> Vec<String> {
        let host_of = |a: &str| -> String {
            let a = a.split_once("://").map_or(a, |(_, rest)| rest);
            let a = a.split('/').next().unwrap_or(a);
            a.rsplit_once(':').map_or(a, |(h, _)| h).to_owned()
        };
        let host = host_of(authority);
        let nameservice = self
            .get("dfs.nameservices")
            .is_some_and(|list| list.split(',').any(|ns| ns.trim() == authority));
        if nameservice {
            let endpoints: Vec<String> = self
                .get(&format!("dfs.ha.namenodes.{authority}"))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|nn| !nn.is_empty())
                .filter_map(|nn| self.get(&format!("dfs.namenode.http-address.{authority}.{nn}")))
                .chain(self.get(&format!("dfs.namenode.http-address.{authority}")))
                .map(|a| format!("http://{a}"))
                .collect();
            if !endpoints.is_empty() {
                return endpoints;
            }
        }
        let ours = [self.default_fs(), self.get("dfs.namenode.rpc-address")]
            .into_iter()
            .flatten()
            .any(|a| host_of(&a) == host);
        if ours && let Some(address) = self.get("dfs.namenode.http-address") {
            let (h, port) = address.rsplit_once(':').unwrap_or((&address, ""));
            let h = if h == "0.0.0.0" || h.is_empty() {
                host.as_str()
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
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://nn.example:8020"));
        assert_eq!(
            c.webhdfs_endpoints("nn.example:8020"),
            ["http://nn.example:9870"]
        );
        let (_d, c) = conf(
            &prop("fs.default.name", "hdfs://old:9000"),
            &prop("dfs.namenode.http-address", "0.0.0.0:50070"),
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://old:9000"));
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

/// Hadoop's reading of its XML files: short forms, substitution, `final`, includes.
#[cfg(test)]
mod hadoop_semantics {
    use super::*;

    fn read(core: &str, hdfs: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, HadoopConf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("core-site.xml"), core).unwrap();
        std::fs::write(dir.path().join("hdfs-site.xml"), hdfs).unwrap();
        for (name, text) in extra {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let c = HadoopConf::read(dir.path()).unwrap();
        (dir, c)
    }

    fn site(props: &str) -> String {
        format!("<?xml version=\"1.0\"?>\n<configuration>\n{props}\n</configuration>\n")
    }

    /// A non-HA hdfs-site.xml names this machine's cluster; a path naming another NameNode
    /// must not be sent to it.
    #[test]
    fn plain_http_address_is_not_used_for_another_namenode() {
        let (_d, c) = read(
            &site(
                "<property><name>fs.defaultFS</name><value>hdfs://a.example:8020</value></property>",
            ),
            &site(
                "<property><name>dfs.namenode.http-address</name><value>a.example:9870</value></property>",
            ),
            &[],
        );
        assert_eq!(
            c.webhdfs_endpoints("a.example:8020"),
            ["http://a.example:9870"]
        );
        assert_eq!(
            c.webhdfs_endpoints("b.example:8020"),
            ["http://b.example:9870"],
            "a path on cluster b is sent to cluster a's NameNode"
        );
    }

    /// Hadoop 3's parser takes the short form `<property name=.. value=../>`.
    #[test]
    fn short_form_properties() {
        let (_d, c) = read(
            &site("<property name=\"fs.defaultFS\" value=\"hdfs://prod\"/>"),
            &site(""),
            &[],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://prod"));
    }

    /// Configuration.get substitutes ${name} with another property (or ${env.NAME}).
    #[test]
    fn variables_are_substituted() {
        let (_d, c) = read(
            &site(
                "<property><name>nn.host</name><value>nn1.example</value></property>\n\
                 <property><name>fs.defaultFS</name><value>hdfs://${nn.host}:8020</value></property>",
            ),
            &site(""),
            &[],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://nn1.example:8020"));
    }

    /// A <final>true</final> property of an earlier resource is not overridden by a later one.
    #[test]
    fn final_properties_are_not_overridden() {
        let (_d, c) = read(
            &site(
                "<property><name>fs.defaultFS</name><value>hdfs://a</value><final>true</final></property>",
            ),
            &site("<property><name>fs.defaultFS</name><value>hdfs://b</value></property>"),
            &[],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://a"));
    }

    /// xi:include is followed, relative to the including file, as Hadoop does.
    #[test]
    fn xinclude_is_followed() {
        let (_d, c) = read(
            "<?xml version=\"1.0\"?>\n<configuration xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n\
             <xi:include href=\"cluster.xml\"/>\n</configuration>\n",
            &site(""),
            &[(
                "cluster.xml",
                &site("<property><name>fs.defaultFS</name><value>hdfs://prod</value></property>"),
            )],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://prod"));
    }

    /// Hadoop's parser joins the text around a comment inside a value.
    #[test]
    fn comment_inside_a_value() {
        let (_d, c) = read(
            &site(
                "<property><name>fs.defaultFS</name><value><!-- prod -->hdfs://prod</value></property>",
            ),
            &site(""),
            &[],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://prod"));
    }

    /// An empty <value/> in a later file does not unset the earlier value in Hadoop
    /// (a property without a value is skipped).
    #[test]
    fn empty_value_does_not_unset() {
        let (_d, c) = read(
            &site("<property><name>fs.defaultFS</name><value>hdfs://prod</value></property>"),
            &site("<property><name>fs.defaultFS</name><value></value></property>"),
            &[],
        );
        assert_eq!(c.default_fs().as_deref(), Some("hdfs://prod"));
    }
}
