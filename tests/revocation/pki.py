"""An OpenSSL CA made by the test with the `openssl` command: a root, an intermediate it issues
(CRL distribution point: the root's CRL), a delegated OCSP responder certificate (id-kp-OCSPSigning,
issued by the intermediate) and server certificates issued by the intermediate, each with an OCSP
responder (AIA) and a CRL distribution point at the addresses the test chooses. `openssl ca` keeps
each CA's index.txt, which `openssl ocsp -index` answers from, and writes the CRLs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_CA_CONFIG = """\
[ ca ]
default_ca = ca_here

[ ca_here ]
dir = {folder}
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied
"""


def openssl(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Issued:
    cert: Path  # PEM
    key: Path  # PEM


class OpenSslCa:
    def __init__(self, folder: Path, name: str, issuer: OpenSslCa | None = None, crl_url: str | None = None) -> None:
        self.folder = folder
        self.name = name
        folder.mkdir(parents=True)
        (folder / "issued").mkdir()
        (folder / "index.txt").write_text("")
        (folder / "serial").write_text("1000\n")
        (folder / "crlnumber").write_text("01\n")
        self.config = folder / "ca.cnf"
        self.config.write_text(_CA_CONFIG.format(folder=folder))
        self.cert, self.key = folder / "ca.pem", folder / "ca.key"
        if issuer is None:
            openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key, "-out", self.cert,
                "-days", "30", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash",
            )  # fmt: skip
        else:
            extensions = ["basicConstraints=critical,CA:TRUE,pathlen:0", "keyUsage=critical,keyCertSign,cRLSign"]
            if crl_url:
                extensions.append(f"crlDistributionPoints=URI:{crl_url}")
            issued = issuer.issue(name, folder, extensions, key_path=self.key, cert_path=self.cert)
            assert issued.cert == self.cert

    def issue(self, name: str, folder: Path, extensions: list[str], key_path: Path | None = None, cert_path: Path | None = None) -> Issued:
        """A certificate for CN=`name` with these extension lines (openssl x509v3_config)."""
        key_path = key_path or folder / f"{name}.key"
        cert_path = cert_path or folder / f"{name}.pem"
        request = folder / f"{name}.csr"
        openssl(
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key_path,
            "-out",
            request,
            "-subj",
            f"/CN={name}",
        )
        extfile = folder / f"{name}.ext"
        extfile.write_text("[ ext ]\n" + "\n".join(extensions) + "\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
        openssl("ca", "-config", self.config, "-batch", "-notext", "-in", request, "-out", cert_path, "-extfile", extfile, "-extensions", "ext")
        return Issued(cert_path, key_path)

    def server_certificate(self, name: str, folder: Path, *, ocsp_url: str | None, crl_url: str | None) -> Issued:
        extensions = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=DNS:vpn.test,IP:127.0.0.1",
        ]
        if ocsp_url:
            extensions.append(f"authorityInfoAccess=OCSP;URI:{ocsp_url}")
        if crl_url:
            extensions.append(f"crlDistributionPoints=URI:{crl_url}")
        return self.issue(name, folder, extensions)

    def ocsp_responder_certificate(self, folder: Path) -> Issued:
        return self.issue(
            f"{self.name} OCSP responder",
            folder,
            ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=OCSPSigning", "noCheck=ignored"],
        )

    def revoke(self, issued: Issued, reason: str = "keyCompromise") -> None:
        openssl("ca", "-config", self.config, "-batch", "-revoke", issued.cert, "-crl_reason", reason)

    def write_crl(self, path: Path) -> None:
        """The CA's CRL, DER, as CAs publish it."""
        pem = self.folder / "crl.pem"
        openssl("ca", "-config", self.config, "-batch", "-gencrl", "-out", pem)
        openssl("crl", "-in", pem, "-outform", "DER", "-out", path)
