module example.com/ngram

go 1.26
