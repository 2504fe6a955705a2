// Reads a zip archive the way TorchServe 0.12.0's frontend unpacks a .mar and lists its entries.
//
// Mirrors ZipUtils.unzip(InputStream, File) in pytorch/serve (tag v0.12.0),
// frontend/archive/src/main/java/org/pytorch/serve/archive/utils/ZipUtils.java, which
// ModelArchive.downloadModel (…/archive/model/ModelArchive.java) calls for a file named *.mar:
//     try (ZipInputStream zis = new ZipInputStream(is)) {
//         while ((entry = zis.getNextEntry()) != null) { ... IOUtils.copy(zis, os); }
//     }
// java.util.zip.ZipInputStream walks the local file headers front to back and never reads the
// central directory, so this program does the same: one pass, every entry's bytes read fully.
// Like ZipUtils.unzip it refuses a name that would land outside the destination folder
// (its "Zip Slip" check, against a folder that is never created here). TorchServe reads from
// Files.newInputStream(...) inside a DigestInputStream; the BufferedInputStream used here does
// not change what ZipInputStream accepts. Not mirrored: failures writing the files out (say a
// file entry "a" and then "a/b").
//
// Usage: java ZipInputStreamCheck.java FILE.mar      (or "-" to read standard input)
// Output: one line per entry: name<TAB>size<TAB>crc32 hex<TAB>sha256 hex, exit 0.
// On a ZipException or IOException: "ERROR: <exception class>: <message>" on stderr, exit 1.
// Bad usage: a message on stderr, exit 2.

import java.io.BufferedInputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

public final class ZipInputStreamCheck {

    private ZipInputStreamCheck() {}

    public static void main(String[] args) throws NoSuchAlgorithmException {
        if (args.length != 1) {
            System.err.println("usage: java ZipInputStreamCheck.java FILE.mar|-");
            System.exit(2);
        }
        StringBuilder out = new StringBuilder();
        try (InputStream raw = "-".equals(args[0]) ? System.in : new FileInputStream(args[0]);
                ZipInputStream zis = new ZipInputStream(new BufferedInputStream(raw))) {
            byte[] buf = new byte[65536];
            File dest = new File(System.getProperty("java.io.tmpdir"), "zip-input-stream-check");
            ZipEntry entry;
            while ((entry = zis.getNextEntry()) != null) {
                File canonicalDestDir = dest.getCanonicalFile();
                File canonicalFile = new File(dest, entry.getName()).getCanonicalFile();
                if (!canonicalFile.getPath().startsWith(canonicalDestDir.getPath())) {
                    throw new IOException("Detected Zip Slip vulnerability: " + entry.getName());
                }
                CRC32 crc = new CRC32();
                MessageDigest sha = MessageDigest.getInstance("SHA-256");
                long size = 0;
                int n;
                while ((n = zis.read(buf)) != -1) {
                    crc.update(buf, 0, n);
                    sha.update(buf, 0, n);
                    size += n;
                }
                out.append(entry.getName()).append('\t')
                        .append(size).append('\t')
                        .append(String.format("%08x", crc.getValue())).append('\t')
                        .append(hex(sha.digest())).append('\n');
            }
        } catch (IOException e) { // ZipException is an IOException
            System.out.print(out);
            System.out.flush();
            System.err.println("ERROR: " + e.getClass().getName() + ": " + e.getMessage());
            System.exit(1);
        }
        System.out.print(out);
        System.out.flush();
    }

    private static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(String.format("%02x", b & 0xff));
        }
        return sb.toString();
    }
}
