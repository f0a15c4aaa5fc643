#!/bin/sh

set -x

echo -n "file" > /vola/mytestfile
