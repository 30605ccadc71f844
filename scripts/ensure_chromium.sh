#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing and we may (root, apt).
# Never fails the build: without Chromium the Playwright tests skip with a message.
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests…"
  (apt-get install -y -q chromium >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
    && exit 0
fi
echo "chromium unavailable: browser tests will be skipped"
exit 1
