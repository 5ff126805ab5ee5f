// Loads the generated napi-rs loader (index.js) and, where no prebuilt binary fits this
// machine, replaces its generic error with one that names the platform and what to do.

try {
  module.exports = require('./index.js');
} catch (err) {
  const { platform, arch } = process;
  let libc = '';
  if (platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
    libc = report?.header?.glibcVersionRuntime ? '-gnu' : '-musl';
  }
  const target = `${platform}-${arch}${libc}`;
  const error = new Error(
    `@porter/native has no prebuilt binary for this platform (${target}). ` +
      `Supported: linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl. ` +
      `If yours is one of them, the optional dependency @porter/native-${target} was not installed: ` +
      `reinstall without --omit=optional / --no-optional (from tarballs: install its tarball too). ` +
      `Otherwise build from source: ` +
      `clone the repository and run "npm ci && npm run build" with a Rust toolchain.`,
    { cause: err },
  );
  error.code = 'ERR_PORTER_NO_BINARY';
  throw error;
}
