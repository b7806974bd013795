"""A signed C2PA manifest (c2pa-python, offline) attached to the output video.

Assertions: the video was created (`c2pa.created`) by synthswap with the digital source type
`trainedAlgorithmicMedia` (AI-generated), and its ingredient is the destination video, named
with its sha256; `org.synthswap.provenance` repeats the metadata (run id, model hashes,
watermark on/off). The claim is signed with ES256 by a key that synthswap makes on first use:

    $SYNTHSWAP_KEY_DIR, or --key-dir, or $XDG_CONFIG_HOME/synthswap/signing (~/.config/...)
      ca.pem       a local certificate authority (10 years), made once
      signer.pem   the signing certificate, issued by it, then the CA: the chain C2PA embeds
      signer.key   its private key (mode 600)

A user can sign with their own certificate chain and key instead (`--sign-cert`, `--sign-key`:
a studio signs as itself); the manifest then records that the signer was user-supplied.

The manifest is bound to the watermark by a `c2pa.soft-binding` assertion: the watermark's
algorithm (WATERMARK_ALG) and its payload, the run id (base64), so a copy stripped of its
manifest, whose watermark still reads, is matched to the manifest kept elsewhere
(`find_by_run_id`, `synthswap verify --manifests DIR`).

Nothing is fetched unless the user names an RFC 3161 time-stamp authority (`--tsa-url`), whose
token then dates the signature; no OCSP ever. A reader therefore finds the signature valid but
its signer in no public trust list (`signingCredential.untrusted`); `verify` says so, says when
the signer is this machine's own key, and gives the time-stamp and its authority when there is one.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthswap import __version__, atomic
from synthswap.locking import LockError, exclusive_lock
from synthswap.provenance.metadata import WATERMARK_ON, ProvenanceRecord

KEY_DIR_ENV = "SYNTHSWAP_KEY_DIR"
AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
FORMATS = {".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4", ".png": "image/png"}
# What every manifest signed with a local key reports: not a fault of the file.
UNTRUSTED = "signingCredential.untrusted"
TIME_STAMPED = "timeStamp.validated"  # the token's digest matches the signature (trusted or not)
SOFT_BINDING = "c2pa.soft-binding"
WATERMARK_ALG = "org.synthswap.watermark.v3"  # provenance/watermark.py: marker + 3-byte run id
SIGNER_LOCAL, SIGNER_USER = "synthswap local key", "user-supplied certificate"


class ManifestError(Exception):
    """The signing key cannot be made or read, or the file cannot be signed."""


def key_dir(given: str | os.PathLike | None = None) -> Path:
    if given:
        return Path(given).expanduser()
    if os.environ.get(KEY_DIR_ENV):
        return Path(os.environ[KEY_DIR_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "synthswap" / "signing"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "synthswap (local key)")])


def _usage(signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                         crl_sign=not signing, encipher_only=False, decipher_only=False)


def _make_keys(folder: Path) -> None:
    """A local CA and a signing certificate it issues (C2PA refuses a self-signed signer)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("synthswap local CA")).issuer_name(_name("synthswap local CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_usage(signing=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("synthswap signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signing=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = folder / "signer.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    atomic.write_bytes(folder / "ca.pem", ca.public_bytes(pem))
    atomic.write_bytes(folder / "signer.pem", cert.public_bytes(pem) + ca.public_bytes(pem))  # last: marks done


def signing_key(folder: str | os.PathLike | None = None) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM), made on first use in `key_dir(folder)`."""
    folder = key_dir(folder)
    try:
        if not (folder / "signer.pem").exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            with exclusive_lock(folder, what="signing key folder"):
                if not (folder / "signer.pem").exists():
                    (folder / "signer.key").unlink(missing_ok=True)  # a run killed half-way
                    _make_keys(folder)
        return (folder / "signer.pem").read_bytes(), (folder / "signer.key").read_bytes()
    except (OSError, LockError) as exc:
        raise ManifestError(f"signing key in {folder}: {getattr(exc, 'strerror', None) or exc}") from exc


def own_serial(folder: str | os.PathLike | None = None) -> str | None:
    """The serial number of this machine's signing certificate, if one was made (never makes one)."""
    path = key_dir(folder) / "signer.pem"
    try:
        return str(x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number)
    except (OSError, ValueError, IndexError):
        return None


def user_signing_key(cert: str | os.PathLike, key: str | os.PathLike) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM) that the user supplied; ManifestError when they
    cannot be read or do not belong together."""
    try:
        chain, private = Path(cert).read_bytes(), Path(key).read_bytes()
        certs = x509.load_pem_x509_certificates(chain)
        loaded = serialization.load_pem_private_key(private, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ManifestError(f"signing certificate {cert} / key {key}: {getattr(exc, 'strerror', None) or exc}") from exc
    if certs[0].public_key().public_numbers() != loaded.public_key().public_numbers():
        raise ManifestError(f"the key {key} does not belong to the certificate {cert}")
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise ManifestError(f"{key}: only ES256 (an EC P-256 key) is supported here")
    return chain, private


def soft_binding(run_id: str) -> dict:
    """The soft-binding assertion's data: the watermark that carries `run_id` (hex)."""
    return {"alg": WATERMARK_ALG, "blocks": [{"scope": {}, "value": base64.b64encode(bytes.fromhex(run_id)).decode()}],
            "name": "synthswap invisible watermark (marker + run id)"}


def manifest_definition(record: ProvenanceRecord, title: str, source: str | None,
                        signer: str = SIGNER_LOCAL) -> dict:
    ingredients = []
    if source:
        ingredients.append({"title": Path(source).name, "relationship": "inputTo",
                            "description": f"the destination (video or image), sha256 {record.source_sha256}",
                            "metadata": {"org.synthswap.sha256": record.source_sha256}})
    return {
        "claim_generator_info": [{"name": "synthswap", "version": __version__}],
        "title": title,
        "ingredients": ingredients,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": AI_GENERATED,
                "softwareAgent": {"name": "synthswap", "version": __version__},
                "description": "face swap: the subject's face rendered into the destination video"}]}},
            {"label": "org.synthswap.provenance", "data": {**record.to_dict(), "signer": signer}},
            *([{"label": SOFT_BINDING, "data": soft_binding(record.run_id)}]
              if record.watermark == WATERMARK_ON else []),
        ],
    }


def sign(path: str | os.PathLike, record: ProvenanceRecord, source: str | os.PathLike | None = None,
         folder: str | os.PathLike | None = None, cert: str | os.PathLike | None = None,
         key: str | os.PathLike | None = None, tsa_url: str | None = None) -> str | None:
    """Attach a signed manifest to `path` in place (written beside it, then renamed); signed with
    the user's `cert` and `key` when given, else with this machine's key in `folder`, and
    time-stamped by the authority at `tsa_url` when given. Returns None, or why the signature
    carries no time-stamp although one was asked for: the manifest is then signed without one,
    since a video without its manifest would be worse off than one without a date."""
    path = Path(path)
    mime = FORMATS.get(path.suffix.lower())
    if mime is None:
        raise ManifestError(f"{path.suffix} files cannot carry a C2PA manifest here (MP4, MOV or PNG can)")
    if (cert is None) != (key is None):
        raise ManifestError("--sign-cert and --sign-key go together")
    chain, private = user_signing_key(cert, key) if cert else signing_key(folder)
    definition = manifest_definition(record, path.name, str(source) if source else None,
                                     SIGNER_USER if cert else SIGNER_LOCAL)
    if tsa_url:
        try:
            _sign_with(path, mime, definition, chain, private, tsa_url)
            return None
        except ManifestError as exc:
            failed = exc.__cause__ or exc
    _sign_with(path, mime, definition, chain, private, None)  # signs: so the authority was what failed
    return f"not time-stamped: the time-stamp authority {tsa_url} failed ({failed})" if tsa_url else None


def _sign_with(path: Path, mime: str, definition: dict, chain: bytes, private: bytes, tsa_url: str | None) -> None:
    tmp = atomic.temp_path(path)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private,
                                                           tsa_url.encode() if tsa_url else None))
        with open(path, "rb") as src, open(tmp, "xb") as dst:
            c2pa.Builder(definition).sign(signer, mime, src, dst)
        os.replace(tmp, path)
    except (c2pa.C2paError, OSError, ValueError) as exc:
        raise ManifestError(f"{path}: could not sign a C2PA manifest ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class ManifestCheck:
    """What a file's C2PA manifest says, if it has one."""

    status: str  # "absent", "valid" or "invalid"
    detail: str = ""
    ai_generated: bool = False
    generator: str | None = None
    signer: str | None = None
    own_key: bool = False  # signed by this machine's synthswap key
    time_stamp: str | None = None  # "TIME by AUTHORITY" when an RFC 3161 token dates the signature
    signer_kind: str = "unknown"  # "this machine's synthswap key", SIGNER_USER, SIGNER_LOCAL (another machine's) or "unknown"
    failures: list[str] = field(default_factory=list)
    assertions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "detail": self.detail, "ai_generated": self.ai_generated,
                "generator": self.generator, "signer": self.signer, "own_key": self.own_key,
                "signer_kind": self.signer_kind, "time_stamp": self.time_stamp, "soft_binding": self.soft_binding_run_id, "failures": self.failures}

    @property
    def soft_binding_run_id(self) -> str | None:
        """The run id (hex) the manifest binds to the watermark, if it has a soft binding."""
        data = self.assertions.get(SOFT_BINDING) or {}
        if data.get("alg") != WATERMARK_ALG:
            return None
        try:
            return base64.b64decode(data["blocks"][0]["value"]).hex()
        except (KeyError, IndexError, TypeError, ValueError):
            return None


def check(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> ManifestCheck:
    """Read and validate the file's manifest; a manifest that cannot be parsed reads as invalid."""
    try:
        reader = c2pa.Reader(str(path))
        store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in text or "no JUMBF" in text:
            return ManifestCheck("absent")
        if "NotSupported" in type(exc).__name__:
            return ManifestCheck("absent", "this format cannot carry a C2PA manifest")
        return ManifestCheck("invalid", f"unreadable manifest ({text})")
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = [f["code"] for f in results.get("failure", []) if f.get("code") != UNTRUSTED]
    actions = [a for x in active.get("assertions", []) if x.get("label", "").startswith("c2pa.actions")
               for a in x.get("data", {}).get("actions", [])]
    signature = active.get("signature_info", {})
    generator = ", ".join(f"{g.get('name')} {g.get('version', '')}".strip()
                          for g in active.get("claim_generator_info", [])) or None
    own = own_serial(folder)
    result = ManifestCheck(
        status="invalid" if failures else "valid",
        ai_generated=any(a.get("digitalSourceType") == AI_GENERATED for a in actions),
        generator=generator,
        signer=" / ".join(x for x in (signature.get("common_name"), signature.get("issuer")) if x) or None,
        own_key=own is not None and signature.get("cert_serial_number") == own,
        failures=failures,
        assertions={x["label"]: x.get("data") for x in active.get("assertions", []) if "label" in x})
    stamped = [r.get("explanation", "") for r in results.get("success", []) if r.get("code") == TIME_STAMPED]
    if stamped and signature.get("time"):
        result.time_stamp = f"{signature['time']} by {stamped[0].rpartition(': ')[2] or 'an unnamed authority'}"
    said = (result.assertions.get("org.synthswap.provenance") or {}).get("signer")
    result.signer_kind = ("this machine's synthswap key" if result.own_key
                          else said if said in (SIGNER_USER, SIGNER_LOCAL) else "unknown")
    if failures:
        result.detail = "signature or hashes do not verify: " + ", ".join(failures)
    elif result.own_key:
        result.detail = "signature valid; signed by this machine's synthswap key"
    elif said == SIGNER_USER:
        result.detail = "signature valid; signed with a user-supplied certificate"
    elif said == SIGNER_LOCAL:
        result.detail = "signature valid; signed by another machine's synthswap key (in no public trust list)"
    else:
        result.detail = "signature valid; signer unknown (in no public trust list)"
    if result.time_stamp and not failures:
        result.detail += f"; time-stamped {result.time_stamp}"
    return result


def find_by_run_id(run_id: str, folder: str | os.PathLike) -> list[tuple[Path, ManifestCheck]]:
    """Files under `folder` whose manifest binds the watermark payload `run_id` (hex): where a
    copy stripped of its manifest comes from. Files without a readable manifest are skipped."""
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.suffix.lower() not in FORMATS:
            continue
        result = check(path)
        if result.status != "absent" and result.soft_binding_run_id == run_id:
            found.append((path, result))
    return found
