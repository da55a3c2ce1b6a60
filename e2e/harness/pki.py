"""Certificates for the local control plane.

kube-apiserver insists on TLS and on a service-account signing key, and RBAC needs client
identities: this module makes a throw-away CA and everything signed by it, once per cluster.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class Pair:
    """A certificate and its key, as files."""

    cert: pathlib.Path
    key: pathlib.Path


@dataclasses.dataclass(frozen=True)
class ClusterPKI:
    """Every file the control plane reads, by role."""

    ca: Pair
    apiserver: Pair
    apiserver_kubelet_client: Pair
    admin: Pair
    controller_manager: Pair
    scheduler: Pair
    kubelet: Pair
    sa_private: pathlib.Path
    sa_public: pathlib.Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: pathlib.Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _make_ca(directory: pathlib.Path) -> tuple[Pair, x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name("faiss-operator-local-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    pair = Pair(directory / "ca.crt", directory / "ca.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair, cert, key


def _issue(
    directory: pathlib.Path,
    stem: str,
    *,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    common_name: str,
    organization: str | None = None,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
) -> Pair:
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if (server_names or server_ips) else []
    usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server_names or server_ips:
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair


def create(directory: pathlib.Path, *, service_ip: str, node_ip: str) -> ClusterPKI:
    """Write a fresh CA and all certificates and keys of one cluster into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_cert, ca_key = _make_ca(directory)

    def issue(stem: str, cn: str, org: str | None = None, **kw: tuple[str, ...]) -> Pair:
        return _issue(directory, stem, ca_cert=ca_cert, ca_key=ca_key, common_name=cn,
                      organization=org, **kw)

    apiserver = issue(
        "apiserver", "kube-apiserver",
        server_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                      "kubernetes.default.svc.cluster.local"),
        server_ips=("127.0.0.1", service_ip, node_ip),
    )
    sa_key = _new_key()
    sa_private = directory / "sa.key"
    sa_public = directory / "sa.pub"
    _write_key(sa_key, sa_private)
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ClusterPKI(
        ca=ca,
        apiserver=apiserver,
        apiserver_kubelet_client=issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                       "system:masters"),
        admin=issue("admin", "kubernetes-admin", "system:masters"),
        controller_manager=issue("controller-manager", "system:kube-controller-manager"),
        scheduler=issue("scheduler", "system:kube-scheduler"),
        kubelet=issue("kubelet", "system:node:process-node", "system:nodes",
                      server_names=("localhost",), server_ips=("127.0.0.1",)),
        sa_private=sa_private,
        sa_public=sa_public,
    )
