// Schema validation (kubernetes-models) of every object in the given YAML files or directories, then the
// rules a rolling deployment of this cluster relies on. Exit 1 with one line per problem.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...inputs] = process.argv.slice(2);
const { parseAllDocuments } = await import(pathToFileURL(join(modules, "yaml/dist/index.js")).href);

const files = inputs.flatMap(input => statSync(input).isDirectory()
  ? readdirSync(input).filter(f => /\.ya?ml$/.test(f)).sort().map(f => join(input, f))
  : [input]);
const problems = [];
const objects = [];

for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      problems.push(`${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const object = doc.toJS();
    if (object == null) continue;
    if (typeof object !== "object" || !object.apiVersion || !object.kind) {
      problems.push(`${file}: a document without apiVersion and kind`);
      continue;
    }
    const where = `${file}: ${object.kind} ${object.metadata?.name ?? "(no name)"}`;
    if (object.kind === "Kustomization") {
      for (const resource of object.resources ?? [])
        if (!files.some(f => resolve(f) === resolve(file, "..", resource)))
          problems.push(`${where}: resource ${resource} is not among the validated files`);
      continue;
    }
    const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : [null, object.apiVersion];
    const modulePath = join(modules, "kubernetes-models", group ?? "", version, `${object.kind}.js`);
    let Model;
    try {
      Model = (await import(pathToFileURL(modulePath).href))[object.kind];
    } catch {
      problems.push(`${where}: unknown apiVersion/kind ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(object).validate();
      objects.push({ where, object });
    } catch (e) {
      problems.push(`${where}: ${e.message.replace(/\s+/g, " ")}`);
    }
  }
}

// ---- rules of this deployment (docs/operations.md, "Deploying to Kubernetes") ----
const rule = (ok, where, text) => { if (!ok) problems.push(`${where}: ${text}`); };
for (const { where, object } of objects) {
  if (object.kind === "Deployment" || object.kind === "StatefulSet") {
    const spec = object.spec;
    const pod = spec.template.spec;
    if (object.kind === "Deployment") {
      const rolling = spec.strategy?.rollingUpdate;
      rule(spec.strategy?.type === "RollingUpdate", where, "strategy.type must be RollingUpdate");
      rule(rolling?.maxUnavailable === 0, where, "strategy.rollingUpdate.maxUnavailable must be 0");
    }
    rule((pod.terminationGracePeriodSeconds ?? 30) > 30, where,
      "terminationGracePeriodSeconds must exceed the 30 s coordinated-shutdown bound");
    rule(pod.serviceAccountName, where, "needs a serviceAccountName with pod read access for discovery");
    for (const c of pod.containers) {
      const cw = `${where} container ${c.name}`;
      rule(c.readinessProbe?.httpGet?.path === "/healthz/ready", cw, "readinessProbe must GET /healthz/ready");
      rule(c.livenessProbe?.httpGet?.path === "/healthz/live", cw, "livenessProbe must GET /healthz/live");
      rule(c.resources?.requests && c.resources?.limits, cw, "needs resource requests and limits");
      rule((c.ports ?? []).some(p => p.name === "management"), cw, "needs a port named management (bootstrap contact point)");
      const env = Object.fromEntries((c.env ?? []).map(e => [e.name, e]));
      rule(env["Messaging__Persistence__ConnectionString"]?.valueFrom?.secretKeyRef, cw,
        "the PostgreSQL connection string must come from a Secret");
      rule(env["Messaging__Discovery__Method"]?.value === "Kubernetes", cw, "Messaging__Discovery__Method must be Kubernetes");
      rule(!env["Messaging__Cluster__SeedNodes"], cw, "no seed nodes under Kubernetes discovery");
      rule(env["Messaging__Cluster__AppVersion"], cw, "Messaging__Cluster__AppVersion must be set (from the image tag)");
      // Remoting carries the sharding protocol without a token: TLS with the certificate of a Secret (operations.md).
      rule(env["Messaging__Cluster__Tls__Enabled"]?.value === "true", cw, "Messaging__Cluster__Tls__Enabled must be \"true\"");
      rule(env["Messaging__Cluster__Tls__CertificatePassword"]?.valueFrom?.secretKeyRef, cw,
        "the remoting certificate's password must come from a Secret");
      const certificate = env["Messaging__Cluster__Tls__CertificatePath"]?.value ?? "";
      const mount = (c.volumeMounts ?? []).find(m => certificate.startsWith(m.mountPath.replace(/\/?$/, "/")));
      rule(mount && (pod.volumes ?? []).some(v => v.name === mount.name && v.secret?.secretName), cw,
        "Messaging__Cluster__Tls__CertificatePath must be a file of a mounted Secret");
      rule(env["Messaging__Cluster__Tls__PeerValidation"]?.value !== "None", cw,
        "Messaging__Cluster__Tls__PeerValidation None accepts any certificate");
    }
    rule(pod.securityContext?.runAsNonRoot === true, where, "pods must run as non-root");
  }
  if (object.kind === "Service" && object.spec?.clusterIP === "None")
    rule(object.spec.publishNotReadyAddresses === true, where, "the headless Service needs publishNotReadyAddresses: true");
  if (object.kind === "NetworkPolicy") {
    // Remoting and management carry no token: only this app's pods may reach them; the admin port (metrics) only
    // from a named scraper, never from everyone; the API port stays open.
    const ingress = object.spec?.ingress ?? [];
    const openTo = port => ingress.filter(r => !r.ports || r.ports.some(p => p.port === port));
    const onlyOwnPods = port => openTo(port).length > 0 && openTo(port).every(r => (r.from ?? []).length > 0
      && r.from.every(f => f.podSelector?.matchLabels?.["app.kubernetes.io/name"] === "messaging" && !f.namespaceSelector && !f.ipBlock));
    rule((object.spec?.policyTypes ?? []).includes("Ingress"), where, "the NetworkPolicy must govern Ingress");
    for (const port of ["remoting", "management"])
      rule(onlyOwnPods(port), where, `port ${port} must be open only to this app's pods`);
    rule(openTo("admin").every(r => (r.from ?? []).length > 0), where, "port admin (metrics without a token) must not be open to everyone");
    rule(openTo("http").some(r => !r.from), where, "port http (the public API) must stay open");
  }
  if (object.kind === "Role")
    rule(object.rules?.some(r => r.resources?.includes("pods") && ["get", "watch", "list"].every(v => r.verbs?.includes(v))),
      where, "the Role must allow get, watch and list on pods");
}
const kinds = new Set(objects.map(o => o.object.kind));
if (inputs.length > 0 && problems.length === 0)
  for (const needed of ["ServiceAccount", "Role", "RoleBinding", "Service", "PodDisruptionBudget", "NetworkPolicy"])
    if (!kinds.has(needed) && kinds.has("Deployment")) problems.push(`missing a ${needed}`);

for (const p of problems) console.error(p);
console.log(`${objects.length} objects in ${files.length} files, ${problems.length} problems`);
process.exit(problems.length === 0 ? 0 : 1);
